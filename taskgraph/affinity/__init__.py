"""affinity"""
