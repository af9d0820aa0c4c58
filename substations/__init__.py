"""substations"""
