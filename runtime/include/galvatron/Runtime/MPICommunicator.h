//===- MPICommunicator.h - Collectives over MPI -----------------*- C++ -*-===//

#ifndef GALVATRON_RUNTIME_MPICOMMUNICATOR_H
#define GALVATRON_RUNTIME_MPICOMMUNICATOR_H

#include "galvatron/Runtime/Communicator.h"

namespace galvatron::runtime {

/// Whether this process was started by an MPI launcher (mpirun, srun).
bool launchedByMPI();

/// Initializes MPI and returns a communicator over all its processes; each
/// program group becomes an MPI communicator of its members. MPI is
/// finalized when the communicator is destroyed.
Expected<std::unique_ptr<Communicator>> createMPICommunicator(int *argc,
                                                              char ***argv);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_MPICOMMUNICATOR_H
