"""Render sprite tasks with Blender (``bpy``): the only module of posebowl that imports bpy.

Run by :mod:`posebowl.synth.sprites` inside the Blender venv (Python 3.11, numpy < 2), as a
script, never imported by the rest of posebowl::

    .cache/blender-venv/bin/python blender_worker.py TASKS.json

``TASKS.json`` is a list of ``{"design_id", "view_id", "out", "resolution", "samples",
"threads"}``. For each task the worker builds the design (once per run of equal design ids),
poses it for the view, renders the spacecraft alone over a transparent film with Cycles on the
CPU, and writes the full RGBA frame to ``out`` (atomically: ``out`` appears only when complete).
The parent crops it to the object. Tasks whose ``out`` exists are skipped (resumable).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

# isort: off
import bpy  # bmesh and mathutils exist only once bpy is imported
import bmesh
from mathutils import Euler, Matrix, Quaternion, Vector

# isort: on


def _load_design_module():  # type: ignore[no-untyped-def]
    """Load design.py by path: importing the posebowl package would pull in pandas."""
    path = Path(__file__).with_name("design.py")
    spec = importlib.util.spec_from_file_location("_posebowl_design", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


design_mod = _load_design_module()


# ----------------------------------------------------------------------------- scene


def reset_scene(resolution: int, samples: int, threads: int) -> bpy.types.Scene:
    """An empty scene with the FACTS.md Cycles settings and a transparent film."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    cy = scene.cycles
    cy.device = "CPU"
    cy.samples = samples
    cy.use_denoising = True
    cy.denoiser = "OPENIMAGEDENOISE"
    cy.denoising_prefilter = "NONE"
    cy.denoising_quality = "FAST"
    cy.max_bounces = 4
    cy.diffuse_bounces = 2
    cy.glossy_bounces = 2
    cy.transmission_bounces = 0
    cy.volume_bounces = 0
    cy.transparent_max_bounces = 2
    scene.render.film_transparent = True
    scene.render.resolution_x = resolution
    scene.render.resolution_y = resolution
    scene.render.resolution_percentage = 100
    scene.render.threads_mode = "FIXED"
    scene.render.threads = max(1, threads)
    scene.render.use_persistent_data = True  # keep the BVH between views of one design
    img = scene.render.image_settings
    img.file_format = "PNG"
    img.color_mode = "RGBA"
    img.color_depth = "8"
    img.compression = 15  # the parent recompresses the crop at level 9
    scene.view_settings.view_transform = "Standard"
    # The film is transparent, but the world still lights the object and shows in reflections:
    # a dark sky above and a blue Earth glow below, so foil and metal are not pitch black.
    world = bpy.data.worlds.new("space")
    world.use_nodes = True
    nt = world.node_tree
    coord = nt.nodes.new("ShaderNodeTexCoord")
    sep = nt.nodes.new("ShaderNodeSeparateXYZ")
    ramp = nt.nodes.new("ShaderNodeValToRGB")
    ramp.name = "sky"
    ramp.color_ramp.elements[0].position = 0.35
    ramp.color_ramp.elements[0].color = (0.3, 0.36, 0.45, 1.0)
    ramp.color_ramp.elements[1].position = 0.6
    ramp.color_ramp.elements[1].color = (0.01, 0.01, 0.015, 1.0)
    nt.links.new(coord.outputs["Generated"], sep.inputs["Vector"])
    math_node = nt.nodes.new("ShaderNodeMapRange")
    math_node.inputs["From Min"].default_value = -1.0
    math_node.inputs["From Max"].default_value = 1.0
    nt.links.new(sep.outputs["Z"], math_node.inputs["Value"])
    nt.links.new(math_node.outputs["Result"], ramp.inputs["Fac"])
    bg = nt.nodes["Background"]
    nt.links.new(ramp.outputs["Color"], bg.inputs["Color"])
    scene.world = world
    return scene


def _principled(name: str) -> tuple[bpy.types.Material, bpy.types.Node, bpy.types.NodeTree]:
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nt = mat.node_tree
    return mat, nt.nodes["Principled BSDF"], nt


def _crinkle(nt: bpy.types.NodeTree, bsdf: bpy.types.Node, scale: float, strength: float) -> None:
    """Crinkled foil: Voronoi facets (the creases of multi-layer insulation) plus distorted
    noise, driving a bump node; the noise also varies the roughness patch by patch."""
    coord = nt.nodes.new("ShaderNodeTexCoord")
    noise = nt.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = scale
    noise.inputs["Detail"].default_value = 6.0
    noise.inputs["Roughness"].default_value = 0.65
    noise.inputs["Distortion"].default_value = 1.5
    vor = nt.nodes.new("ShaderNodeTexVoronoi")
    vor.feature = "F1"
    vor.inputs["Scale"].default_value = scale * 0.7
    mix = nt.nodes.new("ShaderNodeMath")
    mix.operation = "ADD"
    bump = nt.nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = strength
    bump.inputs["Distance"].default_value = 0.05
    nt.links.new(coord.outputs["Object"], noise.inputs["Vector"])
    nt.links.new(coord.outputs["Object"], vor.inputs["Vector"])
    nt.links.new(noise.outputs["Fac"], mix.inputs[0])
    nt.links.new(vor.outputs["Distance"], mix.inputs[1])
    nt.links.new(mix.outputs["Value"], bump.inputs["Height"])
    nt.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    rough = nt.nodes.new("ShaderNodeMapRange")
    base = float(bsdf.inputs["Roughness"].default_value)
    rough.inputs["To Min"].default_value = max(0.05, base - 0.12)
    rough.inputs["To Max"].default_value = min(0.8, base + 0.15)
    nt.links.new(noise.outputs["Fac"], rough.inputs["Value"])
    nt.links.new(rough.outputs["Result"], bsdf.inputs["Roughness"])


def build_materials(tints: dict[str, tuple[float, float, float]], seed: int) -> dict:
    """One Blender material per name in design.MATERIALS, tinted for this design."""
    rng = np.random.default_rng(seed)
    out: dict[str, bpy.types.Material] = {}

    def rgba(c: tuple[float, float, float]) -> tuple[float, float, float, float]:
        return (c[0], c[1], c[2], 1.0)

    foils = (
        ("gold_foil", tints.get("gold_foil", (1.0, 0.7, 0.3)), (0.8, 1.0)),
        ("silver_foil", tints.get("silver_foil", (0.85, 0.85, 0.85)), (0.8, 1.0)),
        ("black_foil", tints.get("black_foil", (0.04, 0.04, 0.04)), (0.0, 0.3)),
    )
    for name, color, metal in foils:
        mat, bsdf, nt = _principled(name)
        bsdf.inputs["Base Color"].default_value = rgba(color)
        bsdf.inputs["Metallic"].default_value = float(rng.uniform(*metal))
        bsdf.inputs["Roughness"].default_value = float(rng.uniform(0.12, 0.4))
        _crinkle(nt, bsdf, float(rng.uniform(3, 16)), float(rng.uniform(0.3, 1.0)))
        out[name] = mat

    cells = tints.get("cells", (0.02, 0.03, 0.12))
    mat, bsdf, nt = _principled("cells")
    coord = nt.nodes.new("ShaderNodeTexCoord")
    brick = nt.nodes.new("ShaderNodeTexBrick")
    brick.offset = 0.0
    brick.squash = 1.0
    brick.inputs["Color1"].default_value = rgba(cells)
    brick.inputs["Color2"].default_value = rgba(tuple(min(1.0, c * 1.4) for c in cells))
    brick.inputs["Mortar"].default_value = (0.45, 0.45, 0.5, 1.0)
    brick.inputs["Scale"].default_value = float(rng.uniform(3, 12))
    brick.inputs["Mortar Size"].default_value = float(rng.uniform(0.008, 0.03))
    brick.inputs["Brick Width"].default_value = 0.5
    brick.inputs["Row Height"].default_value = float(rng.choice([0.25, 0.5]))
    nt.links.new(coord.outputs["Object"], brick.inputs["Vector"])
    nt.links.new(brick.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Metallic"].default_value = float(rng.uniform(0.2, 0.6))
    bsdf.inputs["Roughness"].default_value = float(rng.uniform(0.08, 0.3))
    out["cells"] = mat

    white = tints.get("white_paint", (0.8, 0.8, 0.78))
    grey = tints.get("grey_paint", (0.3, 0.3, 0.3))
    for name, color, metallic, rough in (
        ("white_paint", white, 0.0, 0.5),
        ("grey_paint", grey, 0.1, 0.55),
        ("bare_metal", (0.6, 0.6, 0.62), 1.0, 0.3),
        ("black", (0.02, 0.02, 0.02), 0.0, 0.55),
        ("radiator", (0.9, 0.9, 0.9), 0.0, 0.25),
        ("copper", (0.8, 0.45, 0.25), 1.0, 0.35),
    ):
        mat, bsdf, nt = _principled(name)
        bsdf.inputs["Base Color"].default_value = rgba(color)
        bsdf.inputs["Metallic"].default_value = metallic
        bsdf.inputs["Roughness"].default_value = rough
        out[name] = mat

    # A gold wire-mesh reflector: partly see-through (alpha > 0 still marks every pixel of it).
    mat, bsdf, nt = _principled("gold_mesh")
    bsdf.inputs["Base Color"].default_value = rgba(tints.get("gold_foil", (1.0, 0.7, 0.3)))
    bsdf.inputs["Metallic"].default_value = 1.0
    bsdf.inputs["Roughness"].default_value = 0.35
    bsdf.inputs["Alpha"].default_value = float(rng.uniform(0.45, 0.8))
    mat.blend_method = "BLEND"
    out["gold_mesh"] = mat
    return out


# ----------------------------------------------------------------------------- geometry


def _dish(bm: bmesh.types.BMesh, radius: float, depth: float, segments: int = 24) -> None:
    """A paraboloid bowl opening to +z, vertex at the origin."""
    rings = 6
    centre = bm.verts.new((0.0, 0.0, 0.0))
    prev = None
    for i in range(1, rings + 1):
        rho = radius * i / rings
        z = depth * (i / rings) ** 2
        ring = [
            bm.verts.new((rho * math.cos(t), rho * math.sin(t), z))
            for t in np.linspace(0, 2 * math.pi, segments, endpoint=False)
        ]
        for j in range(segments):
            k = (j + 1) % segments
            if prev is None:
                bm.faces.new((centre, ring[j], ring[k]))
            else:
                bm.faces.new((prev[j], ring[j], ring[k], prev[k]))
        prev = ring


def _part_mesh(part, name: str) -> tuple[bpy.types.Mesh, Matrix]:  # type: ignore[no-untyped-def]
    """The mesh of one design Part (built at its real size) and its local transform."""
    bm = bmesh.new()
    smooth = False
    loc = Vector(part.loc)
    rot = Matrix.Identity(4)
    if part.kind in ("box", "panel"):
        bmesh.ops.create_cube(bm, size=1.0, matrix=Matrix.Diagonal((*part.size, 1.0)))
    elif part.kind == "cylinder":
        r, depth = part.size
        bmesh.ops.create_cone(
            bm, cap_ends=True, segments=part.vertices, radius1=r, radius2=r, depth=depth
        )
        smooth = part.vertices >= 12
    elif part.kind == "cone":
        r1, r2, depth = part.size
        bmesh.ops.create_cone(
            bm, cap_ends=True, segments=part.vertices, radius1=r1, radius2=r2, depth=depth
        )
        smooth = True
    elif part.kind == "sphere":
        bmesh.ops.create_uvsphere(bm, u_segments=16, v_segments=8, radius=part.size[0])
        smooth = True
    elif part.kind == "dish":
        _dish(bm, part.size[0], part.size[1])
        smooth = True
    elif part.kind == "rod":
        a, b = Vector(part.loc), Vector(part.end)
        length = max((b - a).length, 1e-4)
        bmesh.ops.create_cone(
            bm, cap_ends=True, segments=8, radius1=part.size[0], radius2=part.size[0], depth=length
        )
        loc = (a + b) / 2
        rot = (b - a).normalized().to_track_quat("Z", "Y").to_matrix().to_4x4()
        smooth = True
    if part.kind != "rod":
        rot = Euler(part.rot, "XYZ").to_matrix().to_4x4()
    if smooth:
        for f in bm.faces:
            f.smooth = abs(f.normal.z) < 0.99
    me = bpy.data.meshes.new(name)
    bm.to_mesh(me)
    bm.free()
    return me, Matrix.Translation(loc) @ rot


def build_design(design) -> tuple[bpy.types.Object, np.ndarray]:  # type: ignore[no-untyped-def]
    """Instantiate ``design`` under a pivot empty; return the pivot and all vertices (N, 3)."""
    scene = bpy.context.scene
    mats = build_materials(design.tints, seed=design.design_id)
    pivot = bpy.data.objects.new("pivot", None)
    scene.collection.objects.link(pivot)
    offset = bpy.data.objects.new("offset", None)
    scene.collection.objects.link(offset)
    offset.parent = pivot
    verts = []
    for i, part in enumerate(design.parts):
        me, mat4 = _part_mesh(part, f"part{i}")
        me.materials.append(mats[part.material])
        ob = bpy.data.objects.new(f"part{i}", me)
        ob.matrix_basis = mat4
        ob.parent = offset
        scene.collection.objects.link(ob)
        co = np.empty(len(me.vertices) * 3, dtype=np.float64)
        me.vertices.foreach_get("co", co)
        co = co.reshape(-1, 3)
        m = np.array(mat4)
        verts.append(co @ m[:3, :3].T + m[:3, 3])
    allv = np.concatenate(verts)
    centre = (allv.min(axis=0) + allv.max(axis=0)) / 2
    offset.location = Vector(-centre)
    return pivot, allv - centre


def pose_view(scene: bpy.types.Scene, pivot: bpy.types.Object, verts: np.ndarray, view) -> None:  # type: ignore[no-untyped-def]
    """Set attitude, camera distance (tight fit), sun, fill light and exposure for ``view``."""
    q = Quaternion(view.attitude)
    pivot.rotation_mode = "QUATERNION"
    pivot.rotation_quaternion = q
    rv = verts @ np.array(q.to_matrix()).T
    cam_data = bpy.data.cameras.get("cam") or bpy.data.cameras.new("cam")
    cam_data.lens = view.focal_mm
    cam_data.sensor_width = 36.0
    cam_data.sensor_fit = "HORIZONTAL"
    tan_half = 18.0 / view.focal_mm / view.margin
    # Camera at (0, -D, 0) looking +y: every vertex needs |x|, |z| <= tan_half * (D + y).
    dist = float(np.max(np.maximum(np.abs(rv[:, 0]), np.abs(rv[:, 2])) / tan_half - rv[:, 1]))
    cam = bpy.data.objects.get("cam")
    if cam is None:
        cam = bpy.data.objects.new("cam", cam_data)
        scene.collection.objects.link(cam)
    cam.location = (0.0, -dist, 0.0)
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)
    cam_data.clip_start = max(dist * 0.01, 1e-3)
    cam_data.clip_end = dist * 10 + 100
    scene.camera = cam

    for name, direction, energy, color in (
        ("sun", view.sun_dir, view.sun_strength, (1.0, 0.98, 0.95)),
        ("fill", view.fill_dir, view.fill_strength, (0.55, 0.7, 1.0)),
    ):
        data = bpy.data.lights.get(name) or bpy.data.lights.new(name, "SUN")
        data.energy = energy
        data.angle = math.radians(0.5)
        data.color = color
        ob = bpy.data.objects.get(name)
        if ob is None:
            ob = bpy.data.objects.new(name, data)
            scene.collection.objects.link(ob)
        ob.rotation_mode = "QUATERNION"
        ob.rotation_quaternion = Vector(direction).to_track_quat("Z", "Y")
        ob.hide_render = energy <= 0
    # The environment (dark sky above, the Earth's glow below) shows in foil and metal.
    world = getattr(view, "world_strength", 0.12)
    scene.world.node_tree.nodes["Background"].inputs["Strength"].default_value = (
        world + 0.5 * view.fill_strength
    )
    scene.view_settings.exposure = view.exposure


# ----------------------------------------------------------------------------- tasks


def run_tasks(tasks: list[dict]) -> None:
    current: int | None = None
    scene = pivot = verts = None
    for task in tasks:
        out = Path(task["out"])
        if out.exists():
            continue
        t0 = time.perf_counter()
        if task["design_id"] != current:
            scene = reset_scene(task["resolution"], task["samples"], task["threads"])
            design = design_mod.make_design(task["design_id"])
            pivot, verts = build_design(design)
            current = task["design_id"]
        view = design_mod.make_view(task["design_id"], task["view_id"])
        pose_view(scene, pivot, verts, view)
        tmp = out.with_name(out.stem + ".part.png")
        scene.render.filepath = str(tmp)
        bpy.ops.render.render(write_still=True)
        os.replace(tmp, out)
        sys.stderr.write(
            f"POSEBOWL rendered {task['design_id']}/{task['view_id']} "
            f"in {time.perf_counter() - t0:.2f}s\n"
        )
        sys.stderr.flush()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: blender_worker.py TASKS.json\n")
        return 2
    tasks = json.loads(Path(argv[0]).read_text())
    run_tasks(tasks)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
