"""taskflow"""
