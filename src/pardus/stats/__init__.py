"""pardus.stats"""
