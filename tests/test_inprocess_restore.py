"""In-process runs undo everything they patched: guards (after reloading spilled values), counters, wrappers."""

from conftest import run_python

from dagprof.synthetic import generate

SCRIPT = r"""
import os, sys, json
os.chdir(sys.argv[1])
import SCons.Node, SCons.Node.FS, SCons.Node.Alias, SCons.Node.Python, SCons.Taskmaster, SCons.SConsign
import SCons.Script.Main, SCons.Script.SConscript
from dagprof.builds import scons as adapter
from dagstore.spill import GUARD_TYPES, Marker

owners = [SCons.Node.Node, SCons.Node.FS.Base, SCons.Node.FS.File, SCons.Node.FS.Dir, SCons.Node.FS.Entry,
          SCons.Node.FS.RootDir, SCons.Node.Alias.Alias, SCons.Node.Python.Value, SCons.Taskmaster.Task,
          SCons.SConsign, SCons.Script.Main, sys.modules["SCons.Script.SConscript"]]

def snap():
    return [dict(o.__dict__) for o in owners]

before = snap()
results = []
for i in range(2):
    hooks = adapter.StoreHooks(kind=sys.argv[2], spill="File.includes,File.implicit,File.implicit_set,File.binfo")
    prof = adapter.profile_build(["-Q"], extra_hooks=[hooks])
    st = prof.sections["store"]
    after = snap()
    patchable = lambda v: v is not None and (callable(v) or hasattr(type(v), "__get__"))  # not SCons' data
    changed = [(o.__name__, k) for o, b, a in zip(owners, before, after) for k in set(a) | set(b)
               if (patchable(a.get(k)) or patchable(b.get(k))) and a.get(k) is not b.get(k)
               and k not in ("GlobalDict", "_DefaultEnvironmentProxy", "OptionsParser")]
    bad = 0
    nodes = adapter.live_nodes()
    for n in nodes:
        for name in ("includes", "implicit", "implicit_set", "binfo", "waiting_parents", "sources", "depends"):
            try:
                v = getattr(n, name)
            except AttributeError:
                continue
            if type(v) is Marker:
                bad += 1
    guards = [(o.__name__, k) for o in owners for k, v in o.__dict__.items() if isinstance(v, GUARD_TYPES)]
    results.append({"exit": prof.meta["exit_code"], "spilled": st["spilled_attrs"], "changed": sorted(changed),
                    "markers": bad, "guards": guards, "nodes": len(nodes),
                    "implicit": sum(1 for n in nodes if getattr(n, "implicit", None))})
print(json.dumps(results))
"""


def _run(root, store):
    p = run_python(SCRIPT, root, store)
    import json

    return json.loads(p.stdout.splitlines()[-1]), p


def test_two_in_process_builds_leave_scons_as_they_found_it(tmp_path):
    for store in ("memory", "lmdb"):
        proj = generate(tmp_path / store, files=10, files_per_dir=10, seed=3)
        results, p = _run(proj.root, store)
        for r in results:
            assert r["exit"] == 0, p.stderr
            assert r["guards"] == [] and r["changed"] == [], r
            assert r["markers"] == 0, r
        assert results[0]["spilled"] > 0
        assert results[0]["implicit"] > 0  # the spilled dependency lists are back in memory, readable
