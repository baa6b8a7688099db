"""pardus.pipeline"""
