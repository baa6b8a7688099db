"""pardus.alerts"""
