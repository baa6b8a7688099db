"""pardus.reid"""
