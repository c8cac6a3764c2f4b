// The seam between the API server and the VMM (DESIGN.md §1: api/ talks to machine/ through a
// command queue, never the reverse).
#pragma once

#include "api/api_request.h"
#include "api/api_response.h"

namespace vireo {

// Implemented by the VMM side. The server calls handle() from its worker threads, one call at a
// time (it serializes them), and writes the answer back to the client. An implementation that
// forwards to its own thread through a CommandQueue (base/command_queue.h) blocks here until that
// thread answers; if the queue is closed it should answer internal_error().
class ApiHandler {
public:
    virtual ~ApiHandler() = default;
    virtual ApiResponse handle(ApiRequest request) = 0;
};

}  // namespace vireo
