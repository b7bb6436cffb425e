"""Assess an image by a synthetic twin: fit, render, score every model, rank."""
