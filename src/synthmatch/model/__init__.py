"""synthmatch.model"""
