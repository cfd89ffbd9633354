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
#include <string.h>

#define MAX_EVENTS 16
#define MAX_NAME 64

static PyObject *callback = NULL;             /* callback(event: str, args: tuple), Python's _on_event */
static PyInterpreterState *home = NULL;       /* runtime hooks see every interpreter: only ours calls back */
static int mode = 0;                          /* 0 off, 1 "open" events only, 2 every handled event */
static int installed = 0;
static char names[MAX_EVENTS][MAX_NAME];
static int n_names = 0;

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

static PyMethodDef fastaudit_functions[] = {
    {"install", fastaudit_install, METH_VARARGS,
     "install(callback, events): add the runtime audit hook once; callback(event, args) gets these events."},
    {"set_mode", fastaudit_set_mode, METH_O, "set_mode(m): 0 off, 1 'open' events only, 2 every installed event."},
    {"get_mode", fastaudit_get_mode, METH_NOARGS, "The current mode."},
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
    return PyModule_Create(&fastaudit_module);
}
