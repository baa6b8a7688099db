"""pardus.ingest"""
