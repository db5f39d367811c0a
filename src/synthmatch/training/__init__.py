"""synthmatch.training"""
