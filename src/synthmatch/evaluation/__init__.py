"""synthmatch.evaluation"""
