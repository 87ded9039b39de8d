// cxxloop._core: module initialisation.
#include "handle.hpp"
#include "loop.hpp"
#include "sock_op.hpp"
#include "stream_transport.hpp"

namespace {

PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    "cxxloop._core",
    "The C++ core of cxxloop: CoreLoop, Handle, TimerHandle, StreamTransport, SockOp.",
    -1,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace

PyMODINIT_FUNC PyInit__core() {
    using namespace cxxloop::py;
    Ref module = Ref::steal(PyModule_Create(&core_module));
    if (!module) return nullptr;
    if (init_globals() < 0 || init_handle_types(module.get()) < 0 || init_run_until_complete_cb() < 0 ||
        init_loop_type(module.get()) < 0 || init_stream_transport_type(module.get()) < 0 ||
        init_acceptor_type(module.get()) < 0 || init_pipe_transport_types(module.get()) < 0 ||
        init_datagram_transport_type(module.get()) < 0 || init_sock_op_type(module.get()) < 0 ||
        init_ready_gc() < 0) {
        return nullptr;
    }
    return module.release();
}
