"""pardus.models"""
