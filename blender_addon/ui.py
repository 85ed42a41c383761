"""Panel, operators, settings and preferences: a thin shell over api's plans and jobs."""
from __future__ import annotations

import atexit
import threading
import time
from types import SimpleNamespace

import bpy

from . import api, mesh_data
from .client import (AUTO_CATEGORY, LOW_CONFIDENCE, Client, ServerError, connection, default_address,
                     unlike_warning)
from .jobs import Job, describe
from .local_server import LocalServer

PACKAGE = __package__
local_server = LocalServer()
status = {"text": "not checked", "info": None, "give_up": 0.0}
START_TIMEOUT = 120.0  # seconds a starting server may take to answer (loading torch and the model)


def preferences(context=None):
    addon = (context or bpy.context).preferences.addons.get(PACKAGE)
    if addon is not None:
        return addon.preferences
    # Registered by a script without the add-on system (tests, batch): the defaults.
    return SimpleNamespace(address=default_address(), python="", checkpoint="", device="AUTO", timeout=300.0,
                           key_file="", curve=False)


def key_settings(prefs) -> dict:
    """The preferences' key file (absolute) and CurveZMQ box; a script's stand-in for the
    preferences may lack them."""
    key_file = getattr(prefs, "key_file", "")
    return {"key_file": api.absolute(key_file) if key_file else "", "curve": bool(getattr(prefs, "curve", False))}


def options(context) -> api.Options:
    prefs, s = preferences(context), context.scene.corr
    category = "" if s.category in ("", DEFAULT_CATEGORY) else s.category
    return api.Options(address=prefs.address, timeout=prefs.timeout, category=category,
                       align=api.ALIGN_MODES[s.align], evaluated=s.use_modifiers, **key_settings(prefs))


DEFAULT_CATEGORY = "DEFAULT"  # the category menu's first entry: the model the server loads first
_category_items: list[tuple[str, str, str]] = []  # Blender needs the strings to outlive the callback


def category_items(self, context) -> list[tuple[str, str, str]]:
    """The category menu, from the server's info: each category with the checkpoint serving it."""
    _category_items[:] = _category_choices(self)
    return _category_items


def _category_choices(self) -> list[tuple[str, str, str]]:
    info = status["info"] or {}
    files = info.get("checkpoints") or {}
    model = info.get("model") or {}
    default = f"Server default ({model['category']}, {files.get(model['category'], 'checkpoint')})" if model else "Server default"
    categories = info.get("categories", [])
    auto = [(AUTO_CATEGORY, "Auto", "Each request by the model that rebuilds its meshes closest")] if len(categories) > 1 else []
    saved = getattr(self, "category_name", "")  # a saved file's choice, before Check server lists it
    kept = [(saved, saved, "Chosen before; Check server to see whether the server has it")] \
        if saved and saved not in (DEFAULT_CATEGORY, AUTO_CATEGORY, *categories) else []
    return [(DEFAULT_CATEGORY, default, "The model the server loads first")] + [
        (c, f"{c} ({files.get(c, 'shipped')})", f"Checkpoint {files.get(c, '?')}") for c in categories] + kept + auto


# Blender would keep a dynamic menu's choice by its position, which another server's list
# (or none, before Check server) moves: the choice is kept by name in `category_name`.
# These read the choices afresh and leave the menu's own list (and its strings) alone.
def _get_category(self) -> int:
    names = [item[0] for item in _category_choices(self)]
    return names.index(self.category_name) if self.category_name in names else 0


def _set_category(self, index: int) -> None:
    self.category_name = _category_choices(self)[index][0]


def split_selection(context) -> tuple[list, list]:
    """-> (sources, targets) among the selected meshes.  The active object is the source; with
    *Several sources*, every other selected mesh carrying `part_label` is a source too."""
    active = context.active_object
    if active is None or active.type not in mesh_data.SHAPE_TYPES:
        raise ValueError("make the source mesh (or point cloud) the active object")
    meshes = [o for o in context.selected_objects if o.type in mesh_data.SHAPE_TYPES and o is not active]
    several = context.scene.corr.several_sources
    sources = [active] + [o for o in meshes if several and "part_label" in o.data.attributes]
    return sources, [o for o in meshes if o not in sources]


def check_server(context=None, timeout: float = 2.0) -> bool:
    """Ping + info; the panel's status line."""
    prefs = preferences(context)
    found = server_status(prefs.address, timeout, **key_settings(prefs))
    status.update(text=found["text"], info=found["info"])
    return found["info"] is not None


def server_status(address: str, timeout: float, key_file: str = "", curve: bool = False) -> dict:
    """{"text": the status line, "info": the server's info, None when it did not answer}.
    No bpy: it may run off Blender's main thread."""
    try:
        with Client(address, timeout=timeout, **connection(key_file, curve)) as c:
            c.ping(timeout=timeout)
            info = c.info()
    except (ServerError, ValueError) as exc:  # ValueError: an address that is no endpoint, a bad key file
        return {"text": local_server.failure() or describe(exc), "info": None}
    model = info.get("model") or {}
    return {"text": f"connected: {model.get('category', '?')} on {info.get('device', '?')}", "info": info}


def _redraw() -> None:
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


# ---------------------------------------------------------------------- settings
class CorrPreferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    # CORR_SERVER_ADDRESS, where Blender was started with it, is the default (docs/blender.md)
    address: bpy.props.StringProperty(name="Server address", default=default_address())
    python: bpy.props.StringProperty(
        name="Server Python", subtype="FILE_PATH",
        description="Interpreter with the project installed (torch etc.), used by 'Start local server'")
    checkpoint: bpy.props.StringProperty(name="Checkpoint", subtype="FILE_PATH",
                                         description="Empty: the shipped per-category models")
    device: bpy.props.EnumProperty(name="Device", items=[("AUTO", "Auto", "CUDA when available"),
                                                         ("cuda", "CUDA", ""), ("cpu", "CPU", "")])
    timeout: bpy.props.FloatProperty(name="Timeout (s)", default=300.0, min=1.0)
    key_file: bpy.props.StringProperty(
        name="Key file", subtype="FILE_PATH",
        description="File holding the server's key (its --secret-file, readable by its owner only); "
                    "empty: the key in CORR_SERVER_SECRET, if set. A local server started here gets it too")
    curve: bpy.props.BoolProperty(
        name="CurveZMQ", description="The server takes CurveZMQ connections only (started with --curve); "
                                     "a local server started here is too. Needs the key")

    def draw(self, context):
        for name in ("address", "python", "checkpoint", "device", "timeout", "key_file", "curve"):
            self.layout.prop(self, name)


class CorrSettings(bpy.types.PropertyGroup):
    category: bpy.props.EnumProperty(name="Category", items=category_items, get=_get_category, set=_set_category,
                                     description="The model (category and checkpoint); Check server fills the list")
    category_name: bpy.props.StringProperty(name="Category name", options={"HIDDEN"},
                                            description="The chosen category, as a saved file keeps it")
    transfer_labels: bpy.props.BoolProperty(
        name="Part labels", default=True,
        description="Carry the source's part_label (or the model's parts of it) and colour the parts")
    color_attribute: bpy.props.StringProperty(name="Colour", description="Colour attribute of the source to transfer")
    uv_map: bpy.props.StringProperty(name="UV map", description="UV map of the source to transfer")
    vertex_groups: bpy.props.BoolProperty(name="Vertex groups", description="Transfer all vertex-group weights")
    materials: bpy.props.BoolProperty(name="Materials", description="Give the targets the source's materials, "
                                                                   "each polygon the one it lands on")
    attributes: bpy.props.StringProperty(name="Attributes", description="Other attribute names, comma separated")
    threshold: bpy.props.FloatProperty(
        name="Confidence threshold", default=0.5, min=0.0, max=1.0,
        description="Vertices matched less surely than this (often parts the source lacks) are "
                    "handled as 'Below threshold' says")
    fill: bpy.props.EnumProperty(name="Below threshold", default="FILL", items=[
        ("FILL", "Fill", "Fill from confident neighbours over the mesh"),
        ("MARK", "Mark", "Label -1, grey colour, zero weights"),
        ("LEAVE", "Leave", "Keep the target's existing values")])
    align: bpy.props.EnumProperty(name="Auto-align", default="YAW", items=[
        ("YAW", "Turn about Z", "Upright meshes: turn to the way the model expects them to face, "
                                "unless they already face it or no turn is clearly better"),
        ("ANY", "Any rotation", "Meshes that may lie on their side or upside down: search any rotation"),
        ("OFF", "Off", "Use the meshes as they face")])
    several_sources: bpy.props.BoolProperty(
        name="Several sources", description="Selected meshes carrying part_label are sources too; "
                                            "their labels are voted by confidence")
    use_modifiers: bpy.props.BoolProperty(
        name="Use modifiers", description="Match the meshes as their modifiers make them (a Mirror on a half-made "
                                          "source); a target's modifiers must keep its vertex count")


def transfer_choice(context) -> api.TransferChoice:
    s = context.scene.corr
    return api.TransferChoice(
        labels=s.transfer_labels, color=s.color_attribute, uv_map=s.uv_map,
        vertex_groups=None if s.vertex_groups else (),
        attributes=tuple(a.strip() for a in s.attributes.split(",") if a.strip()),
        threshold=s.threshold, fill=s.fill, materials=s.materials)


# ---------------------------------------------------------------------- operators
# What to try for a mesh with low confidence, by the Auto-align mode it was matched with
ALIGN_HINTS = {"OFF": ": if a mesh is turned about Z, set Auto-align to Turn about Z; if it lies on its side or "
                      "upside down, to Any rotation",
               "YAW": ": if a mesh lies on its side or upside down, set Auto-align to Any rotation",
               "ANY": ""}


def _summary(report: dict, others: bool = False, align: str = "YAW") -> str:
    """Each object with its mean confidence, a hint where that is low (by the Auto-align
    mode `align`), and a warning where the model does not explain it (`others`: the server
    has other models to try)."""
    parts = [f"{name} (confidence {r['mean_confidence']:.2f})" if "mean_confidence" in r else name
             for name, r in report.items()]
    low = [name for name, r in report.items() if r.get("mean_confidence", 1.0) < LOW_CONFIDENCE]
    hint = f"; low confidence on {', '.join(low)}{ALIGN_HINTS[align]}" if low else ""
    unlike = [w for w in (unlike_warning(name, r.get("category"), r.get("rebuild_distance"))
                          for name, r in report.items()) if w]
    advice = "expect weak matches" + (", or set Category to Auto" if others else "")
    return ", ".join(parts) + hint + (f"; {'; '.join(unlike)}: {advice}" if unlike else "")


# The job the panel runs: one at a time, or two would write the same meshes and share the
# window's one progress bar.
running: dict = {"job": None}


def busy() -> bool:
    return running["job"] is not None and not running["job"].done


class _PlanOperator:
    """Builds a plan; execute runs it to the end (scripts, headless), invoke runs it modal
    with progress in the status bar and Esc to cancel."""

    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        if busy():
            cls.poll_message_set("a job is running: wait for it, or press Esc to stop it")
            return False
        return True

    def make_plan(self, context):
        raise NotImplementedError

    def _finish(self, context, plan, report) -> set[str]:
        stopped = getattr(plan, "stopped_after", None)
        if stopped is not None:
            self.report({"WARNING"}, f"{plan.label} stopped after {stopped} of {len(plan.targets)} {plan.counts}: "
                                     f"{', '.join(report) or 'nothing'} written")
        else:
            others = context.scene.corr.category != AUTO_CATEGORY and len((status["info"] or {}).get("categories", [])) > 1
            used = next((k for k, v in api.ALIGN_MODES.items() if v == plan.options.align), "YAW")  # not as set since
            self.report({"INFO"}, f"{plan.label}: {_summary(report, others, used)}")
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                shading = area.spaces.active.shading
                names = shading.bl_rna.properties["color_type"].enum_items.keys()
                shading.color_type = "ATTRIBUTE" if "ATTRIBUTE" in names else "VERTEX"  # renamed across 4.x/5.x
        return {"FINISHED"}

    def execute(self, context):
        try:
            plan = self.make_plan(context)
            return self._finish(context, plan, api.run(plan, options(context)))
        except (ValueError, ServerError, RuntimeError) as exc:
            self.report({"ERROR"}, describe(exc))
            return {"CANCELLED"}

    def invoke(self, context, event):
        try:
            self.plan = self.make_plan(context)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        opts = options(context)
        try:
            connect = opts.connection()
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.job = running["job"] = Job(self.plan.work, opts.address, opts.timeout, connect).start()
        wm = context.window_manager
        self.timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _cleanup(self, context) -> None:
        running["job"] = None
        wm = context.window_manager
        wm.event_timer_remove(self.timer)
        wm.progress_end()
        context.workspace.status_text_set(None)

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            if not self.job.progress.stop_requested:  # first Esc: finish the target in hand, write what is done
                self.job.stop()
                return {"RUNNING_MODAL"}
            self.job.cancel()  # second Esc: abandon it all
            self._cleanup(context)
            self.report({"WARNING"}, f"{self.plan.label} cancelled: nothing written")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if not self.job.done:
            context.window_manager.progress_update(int(100 * self.job.fraction))
            hint = "stopping after this one, Esc again cancels all" if self.job.progress.stop_requested else \
                "Esc stops after this one"
            context.workspace.status_text_set(f"{self.plan.label}: {self.job.text} ({self.job.elapsed:.0f} s, {hint})")
            return {"RUNNING_MODAL"}
        self._cleanup(context)
        try:
            return self._finish(context, self.plan, self.plan.apply(self.job.wait(0)))
        except (ValueError, ServerError, RuntimeError) as exc:
            self.report({"ERROR"}, describe(exc))
            return {"CANCELLED"}


class CORR_OT_segment(_PlanOperator, bpy.types.Operator):
    """Label each selected mesh's parts (part_label, part_color)"""

    bl_idname = "corr.segment"
    bl_label = "Segment"

    def make_plan(self, context):
        objects = [o for o in context.selected_objects if o.type in mesh_data.SHAPE_TYPES]
        return api.SegmentPlan(objects, options(context))


class _TransferOperator(_PlanOperator):
    preview = False

    def make_plan(self, context):
        sources, targets = split_selection(context)
        return api.TransferPlan(sources, targets, transfer_choice(context), options(context), preview=self.preview)


class CORR_OT_transfer(_TransferOperator, bpy.types.Operator):
    """Correspond the active mesh (source) to the other selected meshes and transfer the chosen attributes"""

    bl_idname = "corr.transfer"
    bl_label = "Transfer"


class CORR_OT_preview(_TransferOperator, bpy.types.Operator):
    """Write only corr_color (the source's position colours, carried over) to see the match before transferring"""

    bl_idname = "corr.preview"
    bl_label = "Preview"
    preview = True


class CORR_OT_apply_rotation(bpy.types.Operator):
    """Turn the selected meshes by the rotation auto-alignment found for them"""

    bl_idname = "corr.apply_rotation"
    bl_label = "Apply rotation"
    bl_options = {"REGISTER", "UNDO"}

    object: bpy.props.StringProperty(  # the panel's button: the object it shows; empty: the selected ones
        name="Object", default="", options={"HIDDEN", "SKIP_SAVE"})

    def execute(self, context):
        named = bpy.data.objects.get(self.object) if self.object else None
        objects = [named] if named is not None else context.selected_objects
        turned = [o.name for o in objects if api.apply_rotation(o)]
        if not turned:
            self.report({"WARNING"}, "no rotation to apply: auto-alignment found the meshes facing the way the "
                                     "model expects, or has not run (Segment, Preview or Transfer with Auto-align)")
            return {"CANCELLED"}
        self.report({"INFO"}, f"turned {', '.join(turned)}")
        return {"FINISHED"}


class CORR_OT_show_points(bpy.types.Operator):
    """Draw the active point cloud's vertices as spheres in one of its colours (Material Preview, Rendered)"""

    bl_idname = "corr.show_points"
    bl_label = "Show points"
    bl_options = {"REGISTER", "UNDO"}

    color: bpy.props.EnumProperty(
        name="Colour", items=[("part_color", "Parts", "part_color: the part labels"),
                              ("corr_color", "Correspondence", "corr_color: the source's position colours")])

    def execute(self, context):
        try:
            api.show_points(context.active_object, self.color)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class CORR_OT_server_log(bpy.types.Operator):
    """Open the log of the server started from this panel in a Text Editor"""

    bl_idname = "corr.server_log"
    bl_label = "Server log"

    def execute(self, context):
        path = local_server.log_path
        if not path.is_file():
            self.report({"WARNING"}, "no log here: the server was not started from this panel "
                                     "(its log is in the terminal it runs in)")
            return {"CANCELLED"}
        text = bpy.data.texts.get(path.name) or bpy.data.texts.new(path.name)
        text.clear()
        text.write(path.read_text(errors="replace"))
        _show_text(context, text)
        self.report({"INFO"}, f"server log: {path}")
        return {"FINISHED"}


def _show_text(context, text) -> None:
    """Show a text in a Text Editor: the screen's own if it has one, else a new window's."""
    if bpy.app.background or context.window is None:  # headless: the text is there to read from scripts
        return
    areas = [a for a in context.screen.areas if a.type == "TEXT_EDITOR"]
    if not areas:
        bpy.ops.wm.window_new()
        areas = [context.window_manager.windows[-1].screen.areas[0]]
        areas[0].type = "TEXT_EDITOR"
    areas[0].spaces.active.text = text


class CORR_OT_server_check(bpy.types.Operator):
    """Ask the server for its status"""

    bl_idname = "corr.server_check"
    bl_label = "Check server"

    def execute(self, context):
        ok = check_server(context)
        self.report({"INFO"} if ok else {"WARNING"}, status["text"])
        return {"FINISHED"} if ok else {"CANCELLED"}  # a batch script can test it


class CORR_OT_server_start(bpy.types.Operator):
    """Start a correspondence server on this machine (stopped when Blender exits)"""

    bl_idname = "corr.server_start"
    bl_label = "Start local server"

    def execute(self, context):
        prefs = preferences(context)
        try:
            local_server.start(prefs.address, prefs.python, prefs.checkpoint,
                               "" if prefs.device == "AUTO" else prefs.device, **key_settings(prefs))
        except RuntimeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        status.update(text="starting...", info=None, give_up=time.monotonic() + START_TIMEOUT)
        _start_ping.update(address=prefs.address, keys=key_settings(prefs), thread=None, found=None)
        bpy.app.timers.register(_poll_start, first_interval=1.0)
        return {"FINISHED"}


# The starting server's pings run in a thread: each may wait up to START_PING_TIMEOUT for a
# server still loading torch, which on Blender's main thread would freeze the UI.
START_PING_TIMEOUT = 0.5
_start_ping: dict = {"address": "", "keys": {}, "thread": None, "found": None}


def _poll_start():
    """Timer: ping the starting server until it answers, it dies, or START_TIMEOUT passes."""
    ping = _start_ping
    if ping["thread"] is not None and ping["thread"].is_alive():
        return 0.1
    found, ping["found"], ping["thread"] = ping["found"], None, None
    if found is not None and (found["info"] is not None or local_server.failure() or not local_server.running):
        status.update(text=found["text"], info=found["info"])
        _redraw()
        return None
    if time.monotonic() > status["give_up"]:
        status["text"] = f"the server did not answer within {START_TIMEOUT:.0f} s"
        return None

    def ask() -> None:
        ping["found"] = server_status(ping["address"], START_PING_TIMEOUT, **ping["keys"])

    ping["thread"] = threading.Thread(target=ask, name="corr-start-ping", daemon=True)
    ping["thread"].start()
    return 0.5


class CORR_OT_server_stop(bpy.types.Operator):
    """Stop the server started from this panel"""

    bl_idname = "corr.server_stop"
    bl_label = "Stop"

    def execute(self, context):
        local_server.stop()
        status.update(text="stopped", info=None)
        return {"FINISHED"}


# ---------------------------------------------------------------------- panel
class CORR_PT_panel(bpy.types.Panel):
    bl_label = "Correspondence"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Correspondence"

    def draw(self, context):
        layout, s = self.layout, context.scene.corr
        box = layout.box()
        box.label(text=status["text"], icon="LINKED" if status["info"] else "UNLINKED")
        if PACKAGE in context.preferences.addons:
            box.prop(preferences(context), "address")
        row = box.row(align=True)
        row.operator("corr.server_check", icon="FILE_REFRESH")
        if local_server.running:
            row.operator("corr.server_stop", icon="CANCEL")
        else:
            row.operator("corr.server_start", icon="PLAY")
        row.operator("corr.server_log", icon="TEXT")
        box.prop(s, "category")

        layout.operator("corr.segment", icon="GROUP_VERTEX")

        box = layout.box()
        try:
            sources, targets = split_selection(context)
            names = ", ".join(o.name for o in sources)
        except ValueError:
            sources, targets, names = [], [], "(the active mesh)"
        box.label(text=f"Source{'s' if len(sources) > 1 else ''}: {names}", icon="OBJECT_DATA")
        box.label(text=f"Targets: {len(targets)} selected")
        box.prop(s, "several_sources")
        src = context.active_object
        box.prop(s, "transfer_labels")
        if src is not None and src.type in mesh_data.SHAPE_TYPES:
            box.prop_search(s, "color_attribute", src.data, "color_attributes")
        if src is not None and src.type == "MESH":
            box.prop_search(s, "uv_map", src.data, "uv_layers")
        elif s.uv_map:  # left from a mesh source: a point cloud has none to give, so it can be cleared here
            box.prop(s, "uv_map")
        box.prop(s, "materials")
        box.prop(s, "vertex_groups")
        box.prop(s, "attributes")
        box.prop(s, "threshold")
        box.prop(s, "fill")
        box.prop(s, "align")
        self._draw_rotation(box, context.active_object)
        box.prop(s, "use_modifiers")
        row = box.row(align=True)
        row.operator("corr.preview", icon="HIDE_OFF")
        row.operator("corr.transfer", icon="UV_SYNC_SELECT")
        if src is not None and (src.type == "POINTCLOUD" or (
                src.type == "MESH" and len(src.data.vertices) and not len(src.data.polygons))):
            row = layout.row(align=True)  # Blender draws no loose vertices outside Edit Mode, nor points' colours
            row.operator("corr.show_points", text="Show parts", icon="POINTCLOUD_DATA").color = "part_color"
            row.operator("corr.show_points", text="Show match", icon="POINTCLOUD_DATA").color = "corr_color"

    @staticmethod
    def _draw_rotation(layout, obj) -> None:
        """The turn auto-alignment found for the active mesh, and the button that applies it."""
        if obj is None or api.ROTATION_PROP not in obj:
            return
        turn = obj.get(api.TURN_PROP)
        row = layout.row(align=True)
        row.label(text=f"{obj.name}: turn {turn:.0f}\u00b0 about Z" if turn is not None else f"{obj.name}: rotation found",
                  icon="ORIENTATION_GIMBAL")
        row.operator("corr.apply_rotation", text="Apply").object = obj.name


CLASSES = (CorrPreferences, CorrSettings, CORR_OT_segment, CORR_OT_transfer, CORR_OT_preview, CORR_OT_apply_rotation,
           CORR_OT_show_points, CORR_OT_server_check, CORR_OT_server_start, CORR_OT_server_stop, CORR_OT_server_log, CORR_PT_panel)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.corr = bpy.props.PointerProperty(type=CorrSettings)
    atexit.register(local_server.stop)


def unregister() -> None:
    local_server.stop()
    atexit.unregister(local_server.stop)
    if bpy.app.timers.is_registered(_poll_start):
        bpy.app.timers.unregister(_poll_start)
    del bpy.types.Scene.corr
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
