// `centermask`: one program for the whole workflow; each subcommand is a thin layer over the
// library. Exit codes: 0 success, 1 unusable input (the message names file and record),
// 2 bad command line.
//
// Built twice (run.cpp): `centermask` without LibTorch (synth, show, eval start without
// LibTorch's load, measured at ~0.6 s and ~110 MB) and `centermask-torch` with every
// command. `centermask train|predict|test|ablate|upper-bound|bench` replaces itself (exec) with
// centermask-torch from the same folder, so users see one program.

#include "command_runner.h"

int main(int argc, char** argv) { return centermask::cli::run(argc, argv); }
