"""Panel, operators, settings and preferences: a thin shell over api's plans and jobs."""
from __future__ import annotations

import atexit
import time
from types import SimpleNamespace

import bpy

from . import api
from .client import DEFAULT_ADDRESS, Client, ServerError, default_address
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
    return SimpleNamespace(address=default_address(), python="", checkpoint="", device="AUTO", timeout=300.0)


def options(context) -> api.Options:
    prefs, s = preferences(context), context.scene.corr
    return api.Options(address=prefs.address, timeout=prefs.timeout, category=s.category.strip(),
                       align=s.align, evaluated=s.use_modifiers)


def check_server(context=None, timeout: float = 2.0) -> bool:
    """Ping + info; the panel's status line."""
    try:
        with Client(preferences(context).address, timeout=timeout) as c:
            c.ping(timeout=timeout)
            info = c.info()
    except ServerError as exc:
        status.update(text=local_server.failure() or describe(exc), info=None)
        return False
    status.update(text=f"connected: {info.get('category', '?')} on {info.get('device', '?')}", info=info)
    return True


def _redraw() -> None:
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


# ---------------------------------------------------------------------- settings
class CorrPreferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    address: bpy.props.StringProperty(name="Server address", default=DEFAULT_ADDRESS)
    python: bpy.props.StringProperty(
        name="Server Python", subtype="FILE_PATH",
        description="Interpreter with the project installed (torch etc.), used by 'Start local server'")
    checkpoint: bpy.props.StringProperty(name="Checkpoint", subtype="FILE_PATH",
                                         description="Empty: the shipped per-category models")
    device: bpy.props.EnumProperty(name="Device", items=[("AUTO", "Auto", "CUDA when available"),
                                                         ("cuda", "CUDA", ""), ("cpu", "CPU", "")])
    timeout: bpy.props.FloatProperty(name="Timeout (s)", default=300.0, min=1.0)

    def draw(self, context):
        for name in ("address", "python", "checkpoint", "device", "timeout"):
            self.layout.prop(self, name)


class CorrSettings(bpy.types.PropertyGroup):
    category: bpy.props.StringProperty(name="Category", description="chair, table, airplane; empty: server default")
    transfer_labels: bpy.props.BoolProperty(name="Part labels", default=True)
    color_attribute: bpy.props.StringProperty(name="Colour", description="Colour attribute of the source to transfer")
    uv_map: bpy.props.StringProperty(name="UV map", description="UV map of the source to transfer")
    vertex_groups: bpy.props.BoolProperty(name="Vertex groups", description="Transfer all vertex-group weights")
    attributes: bpy.props.StringProperty(name="Attributes", description="Other attribute names, comma separated")
    threshold: bpy.props.FloatProperty(name="Confidence threshold", default=0.5, min=0.0, max=1.0)
    fill: bpy.props.EnumProperty(name="Below threshold", default="FILL", items=[
        ("FILL", "Fill", "Fill from confident neighbours over the mesh"),
        ("MARK", "Mark", "Label -1, grey colour, zero weights"),
        ("LEAVE", "Leave", "Keep the target's existing values")])
    align: bpy.props.BoolProperty(name="Auto-align", description="Search rotations for shapes that are not upright")
    use_modifiers: bpy.props.BoolProperty(name="Use modifiers", description="Use the evaluated meshes")


def transfer_choice(context) -> api.TransferChoice:
    s = context.scene.corr
    return api.TransferChoice(
        labels=s.transfer_labels, color=s.color_attribute, uv_map=s.uv_map,
        vertex_groups=None if s.vertex_groups else (),
        attributes=tuple(a.strip() for a in s.attributes.split(",") if a.strip()),
        threshold=s.threshold, fill=s.fill)


# ---------------------------------------------------------------------- operators
class _PlanOperator:
    """Builds a plan; execute runs it to the end (scripts, headless), invoke runs it modal
    with progress in the status bar and Esc to cancel."""

    bl_options = {"REGISTER", "UNDO"}

    def make_plan(self, context):
        raise NotImplementedError

    def _finish(self, context, plan, report) -> set[str]:
        self.report({"INFO"}, f"{plan.label}: {', '.join(report)}")
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
        self.job = Job(self.plan.work, opts.address, opts.timeout).start()
        wm = context.window_manager
        self.timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _cleanup(self, context) -> None:
        wm = context.window_manager
        wm.event_timer_remove(self.timer)
        wm.progress_end()
        context.workspace.status_text_set(None)

    def modal(self, context, event):
        if event.type == "ESC":
            self.job.cancel()
            self._cleanup(context)
            self.report({"WARNING"}, f"{self.plan.label} cancelled: nothing written")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if not self.job.done:
            context.window_manager.progress_update(int(100 * self.job.fraction))
            context.workspace.status_text_set(f"{self.plan.label}: {self.job.text} ({self.job.elapsed:.0f} s, Esc cancels)")
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
        objects = [o for o in context.selected_objects if o.type == "MESH"]
        return api.SegmentPlan(objects, options(context))


class CORR_OT_transfer(_PlanOperator, bpy.types.Operator):
    """Correspond the active mesh (source) to the other selected meshes and transfer the chosen attributes"""

    bl_idname = "corr.transfer"
    bl_label = "Transfer"

    def make_plan(self, context):
        source = context.active_object
        if source is None or source.type != "MESH":
            raise ValueError("make the source mesh the active object")
        targets = [o for o in context.selected_objects if o.type == "MESH" and o is not source]
        return api.TransferPlan(source, targets, transfer_choice(context), options(context))


class CORR_OT_server_check(bpy.types.Operator):
    """Ask the server for its status"""

    bl_idname = "corr.server_check"
    bl_label = "Check server"

    def execute(self, context):
        ok = check_server(context)
        self.report({"INFO"} if ok else {"WARNING"}, status["text"])
        return {"FINISHED"}


class CORR_OT_server_start(bpy.types.Operator):
    """Start a correspondence server on this machine (stopped when Blender exits)"""

    bl_idname = "corr.server_start"
    bl_label = "Start local server"

    def execute(self, context):
        prefs = preferences(context)
        try:
            local_server.start(prefs.address, prefs.python, prefs.checkpoint,
                               "" if prefs.device == "AUTO" else prefs.device)
        except RuntimeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        status.update(text="starting...", info=None, give_up=time.monotonic() + START_TIMEOUT)
        bpy.app.timers.register(_poll_start, first_interval=1.0)
        return {"FINISHED"}


def _poll_start():
    """Timer: ping the starting server until it answers, it dies, or START_TIMEOUT passes."""
    if check_server(timeout=0.5) or local_server.failure() or not local_server.running:
        _redraw()
        return None
    if time.monotonic() > status["give_up"]:
        status["text"] = f"the server did not answer within {START_TIMEOUT:.0f} s"
        return None
    return 1.0


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
        box.prop(s, "category")

        layout.operator("corr.segment", icon="GROUP_VERTEX")

        box = layout.box()
        src = context.active_object
        box.label(text=f"Source: {src.name if src else '(active object)'}", icon="OBJECT_DATA")
        n = sum(1 for o in context.selected_objects if o.type == "MESH" and o is not src)
        box.label(text=f"Targets: {n} selected")
        box.prop(s, "transfer_labels")
        if src is not None and src.type == "MESH":
            box.prop_search(s, "color_attribute", src.data, "color_attributes")
            box.prop_search(s, "uv_map", src.data, "uv_layers")
        box.prop(s, "vertex_groups")
        box.prop(s, "attributes")
        box.prop(s, "threshold")
        box.prop(s, "fill")
        row = box.row()
        row.prop(s, "align")
        row.prop(s, "use_modifiers")
        box.operator("corr.transfer", icon="UV_SYNC_SELECT")


CLASSES = (CorrPreferences, CorrSettings, CORR_OT_segment, CORR_OT_transfer, CORR_OT_server_check,
           CORR_OT_server_start, CORR_OT_server_stop, CORR_PT_panel)


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
