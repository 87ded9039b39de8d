// The full-collection hook for untracked ready handles and task steps (see
// soon_handle_new).
//
// An untracked handle (or step) that someone besides the queue (or its
// handle) holds is invisible to the GC: nothing reports what it holds.
// While its loop is alive that is harmless (the loop keeps it alive
// anyway), but a loop dropped without close() could then sit in a cycle
// the GC never finds, with its epoll fd and eventfd. So before every full
// collection, such handles and steps of every live loop are tracked again;
// young collections do not pay for the walk.
#include <algorithm>
#include <new>
#include <vector>

#include "handle.hpp"
#include "loop.hpp"

namespace cxxloop::py {
namespace {

std::vector<CoreLoop*> live_loops;  // guarded by the GIL

void track_shared_ready_handles() {
    for (CoreLoop* loop : live_loops) {
        Ring<PyObject*>& ready = loop->s.ready;
        for (size_t i = 0; i < ready.size(); ++i) track_if_shared(ready[i]);
    }
}

// gc.callbacks entry: (phase, info).
PyObject* on_collection(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "expected (phase, info) from the gc module");
        return nullptr;
    }
    int start = PyUnicode_Check(args[0]) ? PyUnicode_CompareWithASCIIString(args[0], "start") == 0 : 0;
    if (!start) Py_RETURN_NONE;
    PyObject* generation = PyDict_GetItemWithError(args[1], g.s_generation);  // borrowed
    if (!generation) return PyErr_Occurred() ? nullptr : Py_NewRef(Py_None);
    long which = PyLong_AsLong(generation);
    if (which == -1 && PyErr_Occurred()) return nullptr;
    if (which == 2) track_shared_ready_handles();
    Py_RETURN_NONE;
}

PyMethodDef on_collection_def = {"_track_shared_ready_handles",
                                 reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(on_collection)),
                                 METH_FASTCALL, nullptr};

}  // namespace

int register_live_loop(CoreLoop* loop) {
    try {
        live_loops.push_back(loop);
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

void unregister_live_loop(CoreLoop* loop) {
    live_loops.erase(std::remove(live_loops.begin(), live_loops.end(), loop), live_loops.end());
}

int init_ready_gc() {
    Ref hook = Ref::steal(PyCFunction_NewEx(&on_collection_def, nullptr, nullptr));
    if (!hook) return -1;
    Ref gc = Ref::steal(PyImport_ImportModule("gc"));
    Ref callbacks = gc ? Ref::steal(PyObject_GetAttrString(gc.get(), "callbacks")) : Ref();
    if (!callbacks) return -1;
    return PyList_Append(callbacks.get(), hook.get());
}

}  // namespace cxxloop::py
