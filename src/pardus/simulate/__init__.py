"""pardus.simulate"""
