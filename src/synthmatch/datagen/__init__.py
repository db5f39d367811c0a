"""synthmatch.datagen"""
