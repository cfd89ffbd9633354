/* The hot path of dagprof.access: a data descriptor that counts reads, writes and deletes and then
 * delegates to the descriptor it wraps (a slot member descriptor, a property, ...).  Written in C
 * because a Python-level __get__ on every SCons Node slot read costs ~1.3x wall time on a null build.
 * profiler/access.py holds the identical pure-Python fallback and all the bookkeeping. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *wrapped;     /* the original data descriptor (never NULL) */
    PyObject *owner;       /* the class this counter is installed on */
    PyObject *name;        /* attribute name */
    PyObject *readers;     /* set of id(obj) that read, or None */
    descrgetfunc get;      /* cached tp_descr_get of wrapped */
    descrsetfunc set;      /* cached tp_descr_set of wrapped */
    long long reads;
    long long writes;
    long long deletes;
} Counter;

static int
Counter_init(Counter *self, PyObject *args, PyObject *kwds)
{
    PyObject *wrapped, *owner, *name;
    if (!PyArg_ParseTuple(args, "OOU", &wrapped, &owner, &name))
        return -1;
    descrgetfunc g = Py_TYPE(wrapped)->tp_descr_get;
    descrsetfunc s = Py_TYPE(wrapped)->tp_descr_set;
    if (g == NULL || s == NULL) {
        PyErr_SetString(PyExc_TypeError, "Counter wraps data descriptors only");
        return -1;
    }
    Py_INCREF(wrapped); Py_XSETREF(self->wrapped, wrapped);
    Py_INCREF(owner); Py_XSETREF(self->owner, owner);
    Py_INCREF(name); Py_XSETREF(self->name, name);
    Py_INCREF(Py_None); Py_XSETREF(self->readers, Py_None);
    self->get = g;
    self->set = s;
    self->reads = self->writes = self->deletes = 0;
    return 0;
}

static int
Counter_traverse(Counter *self, visitproc visit, void *arg)
{
    Py_VISIT(self->wrapped);
    Py_VISIT(self->owner);
    Py_VISIT(self->readers);
    return 0;
}

static int
Counter_clear(Counter *self)
{
    Py_CLEAR(self->wrapped);
    Py_CLEAR(self->owner);
    Py_CLEAR(self->name);
    Py_CLEAR(self->readers);
    return 0;
}

static void
Counter_dealloc(Counter *self)
{
    PyObject_GC_UnTrack(self);
    Counter_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Counter_descr_get(Counter *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        /* class-level access: behave like the wrapped descriptor would (it returns itself) */
        return self->get(self->wrapped, obj, type);
    }
    self->reads++;
    if (self->readers != Py_None) {
        PyObject *key = PyLong_FromVoidPtr(obj);
        if (key == NULL) return NULL;
        int r = PySet_Add(self->readers, key);
        Py_DECREF(key);
        if (r < 0) return NULL;
    }
    return self->get(self->wrapped, obj, type);
}

static int
Counter_descr_set(Counter *self, PyObject *obj, PyObject *value)
{
    if (value == NULL) self->deletes++;
    else self->writes++;
    return self->set(self->wrapped, obj, value);
}

static PyObject *
Counter_take(Counter *self, PyObject *Py_UNUSED(ignored))
{
    /* return (reads, writes, deletes, readers) and reset, atomically under the GIL */
    PyObject *readers;
    if (self->readers == Py_None) {
        Py_INCREF(Py_None);
        readers = Py_None;
    } else {
        readers = self->readers;
        self->readers = PySet_New(NULL);
        if (self->readers == NULL) { self->readers = readers; return NULL; }
    }
    PyObject *res = Py_BuildValue("(LLLN)", self->reads, self->writes, self->deletes, readers);
    self->reads = self->writes = self->deletes = 0;
    return res;
}

static PyObject *
Counter_track_readers(Counter *self, PyObject *flag)
{
    int on = PyObject_IsTrue(flag);
    if (on < 0) return NULL;
    if (on) {
        if (self->readers == Py_None) {
            PyObject *s = PySet_New(NULL);
            if (s == NULL) return NULL;
            Py_SETREF(self->readers, s);
        }
    } else {
        Py_INCREF(Py_None);
        Py_SETREF(self->readers, Py_None);
    }
    Py_RETURN_NONE;
}

static PyMethodDef Counter_methods[] = {
    {"take", (PyCFunction)Counter_take, METH_NOARGS, "Return (reads, writes, deletes, readers) and reset."},
    {"track_readers", (PyCFunction)Counter_track_readers, METH_O, "Switch distinct-reader tracking on or off."},
    {NULL}
};

static PyMemberDef Counter_members[] = {
    {"wrapped", T_OBJECT, offsetof(Counter, wrapped), READONLY, "the original descriptor"},
    {"owner", T_OBJECT, offsetof(Counter, owner), READONLY, "the class it is installed on"},
    {"name", T_OBJECT, offsetof(Counter, name), READONLY, "attribute name"},
    {"reads", T_LONGLONG, offsetof(Counter, reads), READONLY, "reads since last take()"},
    {"writes", T_LONGLONG, offsetof(Counter, writes), READONLY, "writes since last take()"},
    {"deletes", T_LONGLONG, offsetof(Counter, deletes), READONLY, "deletes since last take()"},
    {NULL}
};

static PyObject *
Counter_get_doc(Counter *self, void *closure)
{
    if (self->wrapped == NULL) Py_RETURN_NONE;
    return PyObject_GetAttrString(self->wrapped, "__doc__");
}

static PyGetSetDef Counter_getset[] = {
    {"__doc__", (getter)Counter_get_doc, NULL, NULL, NULL},
    {NULL}
};

static PyTypeObject CounterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dagprof._fastcount.Counter",
    .tp_basicsize = sizeof(Counter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Counter_init,
    .tp_dealloc = (destructor)Counter_dealloc,
    .tp_traverse = (traverseproc)Counter_traverse,
    .tp_clear = (inquiry)Counter_clear,
    .tp_descr_get = (descrgetfunc)Counter_descr_get,
    .tp_descr_set = (descrsetfunc)Counter_descr_set,
    .tp_methods = Counter_methods,
    .tp_members = Counter_members,
    .tp_getset = Counter_getset,
};


static struct PyModuleDef fastcount_module = {
    PyModuleDef_HEAD_INIT, "_fastcount", "C fast path for dagprof.access", -1, NULL,
};

PyMODINIT_FUNC
PyInit__fastcount(void)
{
    if (PyType_Ready(&CounterType) < 0) return NULL;
    PyObject *m = PyModule_Create(&fastcount_module);
    if (m == NULL) return NULL;
    Py_INCREF(&CounterType);
    if (PyModule_AddObject(m, "Counter", (PyObject *)&CounterType) < 0) {
        Py_DECREF(&CounterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
