"""pardus.interop"""
