"""Helpers that benches and tests share: synthetic stores filled fast, without image files."""
