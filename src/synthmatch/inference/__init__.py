"""synthmatch.inference"""
