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
//
// The hook in gc.callbacks holds the module weakly: a strong reference
// from that process-wide list would keep the module, and everything its
// state holds, alive until the interpreter ends.
#include <algorithm>
#include <new>
#include <vector>

#include "handle.hpp"
#include "loop.hpp"
#include "methods.hpp"

namespace cxxloop::py {
namespace {

void track_shared_ready_handles(ModuleState* st) {
    for (CoreLoop* loop : st->live_loops) {
        Ring<PyObject*>& ready = loop->s.ready;
        for (size_t i = 0; i < ready.size(); ++i) track_if_shared(ready[i]);
    }
}

// gc.callbacks entry: (phase, info). `self` is a weak reference to the module.
PyObject* on_collection(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "expected (phase, info) from the gc module");
        return nullptr;
    }
    PyObject* strong;
    if (PyWeakref_GetRef(self, &strong) < 0) return nullptr;
    Ref module = Ref::steal(strong);
    if (!module) Py_RETURN_NONE;  // a module that is gone leaves its hook behind, idle
    ModuleState* st = module_state(module.get());
    if (!PyUnicode_Check(args[0]) || PyUnicode_CompareWithASCIIString(args[0], "start") != 0) Py_RETURN_NONE;
    PyObject* generation = PyDict_GetItemWithError(args[1], st->s_generation);  // borrowed
    if (!generation) return PyErr_Occurred() ? nullptr : Py_NewRef(Py_None);
    long which = PyLong_AsLong(generation);
    if (which == -1 && PyErr_Occurred()) return nullptr;
    if (which == 2) track_shared_ready_handles(st);
    Py_RETURN_NONE;
}

PyMethodDef on_collection_def = method_fastcall<on_collection>("_track_shared_ready_handles", nullptr);

}  // namespace

int register_live_loop(CoreLoop* loop) {
    try {
        loop->s.st->live_loops.push_back(loop);
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

void unregister_live_loop(CoreLoop* loop) {
    if (!loop->s.st) return;  // its construction failed before registering
    std::vector<CoreLoop*>& loops = loop->s.st->live_loops;
    loops.erase(std::remove(loops.begin(), loops.end(), loop), loops.end());
}

int init_ready_gc(PyObject* module) {
    Ref weak = Ref::steal(PyWeakref_NewRef(module, nullptr));
    if (!weak) return -1;
    Ref hook = Ref::steal(PyCFunction_NewEx(&on_collection_def, weak.get(), nullptr));
    if (!hook) return -1;
    Ref gc = Ref::steal(PyImport_ImportModule("gc"));
    Ref callbacks = gc ? Ref::steal(PyObject_GetAttrString(gc.get(), "callbacks")) : Ref();
    if (!callbacks) return -1;
    return PyList_Append(callbacks.get(), hook.get());
}

}  // namespace cxxloop::py
