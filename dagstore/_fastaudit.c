/* C fast path of dagstore.inputs: the process-wide audit hook.
 *
 * Why: a PEP 578 hook cannot be removed, so once the DAG cache has recorded a read phase every audit event
 * of the rest of the process (SCons raises ~650,000 at 5k files, mostly builtins.id) calls the hook.  A
 * hook added with sys.addaudithook costs a Python call and a new event-name string per event; this runtime
 * hook (PySys_AddAuditHook) looks at the event name in C and calls the Python recorder only for the events
 * it handles, and only while a recorder is active (set_mode).  The pure-Python hook in inputs.py remains
 * the fallback and gives the same records. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <fcntl.h>
#include <string.h>

#define MAX_EVENTS 16
#define MAX_NAME 64

static PyObject *callback = NULL;             /* callback(event: str, args: tuple), Python's _on_event */
static PyInterpreterState *home = NULL;       /* runtime hooks see every interpreter: only ours calls back */
static int mode = 0;                          /* 0 off, 1 "open" events only, 2 every handled event */
static int installed = 0;
static char names[MAX_EVENTS][MAX_NAME];
static int n_names = 0;
/* mode 1's sink: {path: bits} filled here for the "open" events of plain absolute paths, without calling
 * Python (a build opens every source and object: ~3,000 opens at 1,000 files, 4 us each through Python).
 * Bits as dagstore.inputs: 1 read, 2 written.  Not used while any thread is quiet (the recorder's own
 * reads, dagstore.inputs._Quiet): those events go to the callback, which knows which thread is quiet. */
static PyObject *sink = NULL;
static long quiet_depth = 0;
/* mode 2's probe sink: {path: bits} of os.stat/lstat/access calls on plain absolute paths, filled by probe()
 * (called by the Python wrappers: ~2,400 distinct probes while a 1,000-file project's SConscripts are read,
 * 2-3 us each through the Python recorder). Bits as dagstore.inputs: 1 stat/access, 2 lstat. */
static PyObject *probe_sink = NULL;

/* The write test of dagstore.inputs._note_open: mode "r"/"rb"/... reads; any of "wax+" writes; no mode
 * (os.open): the flags decide. Returns 1 or 2, or 0 when the arguments are not what "open" passes. */
static int
open_bits(PyObject *mode_obj, PyObject *flags_obj)
{
    if (mode_obj == Py_None) {
        long flags = PyLong_Check(flags_obj) ? PyLong_AsLong(flags_obj) : -1;
        if (flags == -1) {
            PyErr_Clear();
            return 0;
        }
        return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_APPEND | O_TRUNC)) ? 2 : 1;
    }
    if (!PyUnicode_Check(mode_obj))
        return 0;
    const char *m = PyUnicode_AsUTF8(mode_obj);
    if (m == NULL) {
        PyErr_Clear();
        return 0;
    }
    return strpbrk(m, "wax+") != NULL ? 2 : 1;
}

/* 1 when path is a str that os.path.normpath() leaves as it is, absolute (inputs.InputRecorder._abs' fast
 * path); 0 otherwise (lone surrogates, from surrogateescape, too: the Python recorder handles those) */
static int
plain_path(PyObject *path)
{
    if (!PyUnicode_CheckExact(path))
        return 0;
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(path, &n);
    if (p == NULL) {
        PyErr_Clear();
        return 0;
    }
    return !(n == 0 || p[0] != '/' || p[n - 1] == '/' || strstr(p, "//") != NULL || strstr(p, "/.") != NULL);
}

/* d[path] |= bits: 1 done, -1 on error */
static int
merge_bits(PyObject *d, PyObject *path, long bits)
{
    PyObject *old = PyDict_GetItemWithError(d, path);
    if (old == NULL && PyErr_Occurred())
        return -1;
    long have = old != NULL ? PyLong_AsLong(old) : 0;
    if (old != NULL && (have | bits) == have)
        return 1;
    PyObject *val = PyLong_FromLong(have | bits);
    if (val == NULL)
        return -1;
    int rc = PyDict_SetItem(d, path, val);
    Py_DECREF(val);
    return rc < 0 ? -1 : 1;
}

/* 1 when the event went into the sink; 0 when the callback must see it; -1 on error */
static int
to_sink(PyObject *args)
{
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) != 3)
        return 0;
    PyObject *path = PyTuple_GET_ITEM(args, 0);
    if (!plain_path(path))
        return 0;
    int bits = open_bits(PyTuple_GET_ITEM(args, 1), PyTuple_GET_ITEM(args, 2));
    if (bits == 0)
        return 0;
    return merge_bits(sink, path, bits);
}

static int
wanted(const char *event)
{
    if (mode == 1)
        return strcmp(event, "open") == 0;
    for (int i = 0; i < n_names; i++)
        if (strcmp(event, names[i]) == 0)
            return 1;
    return 0;
}

static int
hook(const char *event, PyObject *args, void *user_data)
{
    (void)user_data;
    if (mode == 0 || callback == NULL || !wanted(event))
        return 0;
    if (PyInterpreterState_Get() != home)
        return 0;
    if (mode == 1 && sink != NULL && quiet_depth == 0) {
        int r = to_sink(args);
        if (r != 0)
            return r < 0 ? -1 : 0;
    }
    PyObject *name = PyUnicode_InternFromString(event);
    if (name == NULL)
        return -1;
    /* as CPython does for a hook added with sys.addaudithook: no trace/profile function (sys.settrace,
     * sys.setprofile, cProfile, scons --profile, pdb) sees the recorder's own Python code */
    PyThreadState *ts = PyThreadState_Get();
    PyObject *cb = callback;  /* owned for the call: install() may replace the global meanwhile */
    Py_INCREF(cb);
    PyThreadState_EnterTracing(ts);
    PyObject *res = PyObject_CallFunctionObjArgs(cb, name, args, NULL);
    PyThreadState_LeaveTracing(ts);
    Py_DECREF(cb);
    Py_DECREF(name);
    if (res == NULL)
        return -1;  /* as a Python hook that raises: the audited operation fails with the exception */
    Py_DECREF(res);
    return 0;
}

static PyObject *
fastaudit_install(PyObject *self, PyObject *args)
{
    PyObject *cb, *events;
    if (!PyArg_ParseTuple(args, "OO!", &cb, &PyTuple_Type, &events))
        return NULL;
    if (!PyCallable_Check(cb)) {
        PyErr_SetString(PyExc_TypeError, "install(callback, events): callback must be callable");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(events);
    if (n > MAX_EVENTS) {
        PyErr_SetString(PyExc_ValueError, "install(callback, events): too many events");
        return NULL;
    }
    char copy[MAX_EVENTS][MAX_NAME];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(events, i);
        if (!PyUnicode_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "install(callback, events): events must be str");
            return NULL;
        }
        Py_ssize_t size;
        const char *s = PyUnicode_AsUTF8AndSize(item, &size);
        if (s == NULL)
            return NULL;
        if (size >= MAX_NAME) {
            PyErr_SetString(PyExc_ValueError, "install(callback, events): event name too long");
            return NULL;
        }
        memcpy(copy[i], s, (size_t)size + 1);
    }
    if (installed && PyInterpreterState_Get() != home) {
        /* the state here is per process, the recorder per interpreter: a second interpreter would take over
         * the callback and reset the mode of the first; it uses the Python hook instead */
        PyErr_SetString(PyExc_ImportError, "install(): the C audit hook serves another interpreter");
        return NULL;
    }
    if (!installed) {
        if (PySys_AddAuditHook(hook, NULL) < 0)
            return NULL;
        installed = 1;
        home = PyInterpreterState_Get();
    }
    mode = 0;
    memcpy(names, copy, sizeof(copy));
    n_names = (int)n;
    Py_INCREF(cb);
    Py_XSETREF(callback, cb);
    Py_RETURN_NONE;
}

static PyObject *
fastaudit_set_mode(PyObject *self, PyObject *arg)
{
    long m = PyLong_AsLong(arg);
    if (m == -1 && PyErr_Occurred())
        return NULL;
    if (m < 0 || m > 2) {
        PyErr_SetString(PyExc_ValueError, "set_mode(mode): 0 off, 1 opens only, 2 all events");
        return NULL;
    }
    if (m != 0 && !installed) {
        PyErr_SetString(PyExc_RuntimeError, "set_mode: install() first");
        return NULL;
    }
    mode = (int)m;
    Py_RETURN_NONE;
}

static PyObject *
fastaudit_get_mode(PyObject *self, PyObject *unused)
{
    return PyLong_FromLong(mode);
}

/* *slot = d (a dict) or NULL (None): where mode 1's opens or mode 2's probes go */
static PyObject *
set_dict(PyObject **slot, PyObject *arg, const char *what)
{
    if (arg != Py_None && !PyDict_CheckExact(arg)) {
        PyErr_Format(PyExc_TypeError, "%s(d): a dict or None", what);
        return NULL;
    }
    Py_XINCREF(arg == Py_None ? NULL : arg);
    Py_XSETREF(*slot, arg == Py_None ? NULL : arg);
    Py_RETURN_NONE;
}

static PyObject *
fastaudit_set_sink(PyObject *self, PyObject *arg)
{
    return set_dict(&sink, arg, "set_sink");
}

static PyObject *
fastaudit_set_probe_sink(PyObject *self, PyObject *arg)
{
    return set_dict(&probe_sink, arg, "set_probe_sink");
}

/* probe(args, kwargs, bit) -> bool: a wrapped os.stat/lstat/access call's arguments; True when the probe
 * went into the probe sink, False when the Python recorder must look at it (keyword arguments, a path that
 * is not a plain absolute str, a quiet thread somewhere, no recording) */
static PyObject *
fastaudit_probe(PyObject *self, PyObject *const *argv, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "probe(args, kwargs, bit)");
        return NULL;
    }
    PyObject *args = argv[0], *kwargs = argv[1];
    if (mode != 2 || probe_sink == NULL || quiet_depth != 0 || PyInterpreterState_Get() != home)
        Py_RETURN_FALSE;
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) != 1)
        Py_RETURN_FALSE;
    if (kwargs != Py_None && (!PyDict_Check(kwargs) || PyDict_GET_SIZE(kwargs) != 0))
        Py_RETURN_FALSE;
    PyObject *path = PyTuple_GET_ITEM(args, 0);
    if (!plain_path(path))
        Py_RETURN_FALSE;
    long bit = PyLong_AsLong(argv[2]);
    if (bit == -1 && PyErr_Occurred())
        return NULL;
    if (merge_bits(probe_sink, path, bit) < 0)
        return NULL;
    Py_RETURN_TRUE;
}

static PyObject *
fastaudit_quiet(PyObject *self, PyObject *arg)
{
    long d = PyLong_AsLong(arg);
    if (d == -1 && PyErr_Occurred())
        return NULL;
    quiet_depth += d;
    if (quiet_depth < 0)
        quiet_depth = 0;
    return PyLong_FromLong(quiet_depth);
}

static PyMethodDef fastaudit_functions[] = {
    {"install", fastaudit_install, METH_VARARGS,
     "install(callback, events): add the runtime audit hook once; callback(event, args) gets these events."},
    {"set_mode", fastaudit_set_mode, METH_O, "set_mode(m): 0 off, 1 'open' events only, 2 every installed event."},
    {"get_mode", fastaudit_get_mode, METH_NOARGS, "The current mode."},
    {"set_sink", fastaudit_set_sink, METH_O,
     "set_sink(d): mode 1 merges plain absolute paths' open events into d {path: 1 read | 2 written}; None: off."},
    {"set_probe_sink", fastaudit_set_probe_sink, METH_O,
     "set_probe_sink(d): probe() merges plain absolute paths into d {path: bits} in mode 2; None: off."},
    {"probe", (PyCFunction)(void (*)(void))fastaudit_probe, METH_FASTCALL,
     "probe(args, kwargs, bit) -> bool: True when the wrapped call's probe went into the probe sink."},
    {"quiet", fastaudit_quiet, METH_O, "quiet(+1/-1): while > 0 every event goes to the callback; the depth."},
    {NULL}
};

static struct PyModuleDef fastaudit_module = {
    PyModuleDef_HEAD_INIT, "_fastaudit", "C audit hook for dagstore.inputs", -1, fastaudit_functions,
};

PyMODINIT_FUNC
PyInit__fastaudit(void)
{
    /* called again only after Py_Finalize() (which removed every runtime hook) and a new Py_Initialize():
     * forget the old interpreter's hook and callback (not decref'd: that interpreter is gone) */
    installed = 0;
    mode = 0;
    home = NULL;
    callback = NULL;
    n_names = 0;
    sink = NULL;
    probe_sink = NULL;
    quiet_depth = 0;
    return PyModule_Create(&fastaudit_module);
}
