"""V-IRL navigation tasks (virl-l, virl-vl): follow route instructions through seeded cities.

Modules: geometry (headings, relative turns), city (styles and street graphs), routes (routes and the rail),
instructions, verifier (parsing, rewards), prompts, render (street views), loader (the paper's route files),
env, plugin (TaskSpecs and Gymnasium ids).
"""
