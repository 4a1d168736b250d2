// The avx2 build of the engine: setup.py compiles each instruction-set level from its own
// file, so that their object files never share a path (a shared one is overwritten by the
// parallel build, or taken as up to date by the next module).
#include "engine.cpp"
