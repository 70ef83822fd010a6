"""models/sharing"""
