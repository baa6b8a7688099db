"""pardus.web"""
