// Backports of the few C API calls newer than the oldest supported CPython.
#pragma once

#include "pyref.hpp"

#if PY_VERSION_HEX < 0x030C0000
// 3.12 replaced the (type, value, traceback) triple with one object.
inline PyObject* PyErr_GetRaisedException() {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (!type) return nullptr;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb) PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

inline void PyErr_SetRaisedException(PyObject* exc) {
    if (!exc) {
        PyErr_Clear();
        return;
    }
    PyObject* tb = PyException_GetTraceback(exc);
    PyErr_Restore(Py_NewRef(reinterpret_cast<PyObject*>(Py_TYPE(exc))), exc, tb);
}
#endif

#if PY_VERSION_HEX < 0x030D0000
// 3.13 added the strong-reference form of PyWeakref_GetObject.
inline int PyWeakref_GetRef(PyObject* ref, PyObject** pobj) {
    PyObject* obj = PyWeakref_GetObject(ref);
    if (!obj) {
        *pobj = nullptr;
        return -1;
    }
    if (obj == Py_None) {
        *pobj = nullptr;
        return 0;
    }
    *pobj = Py_NewRef(obj);
    return 1;
}
#endif
