"""synthmatch.web"""
