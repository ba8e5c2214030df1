/* instance_cli.c - the --instance option shared by simplecached, webproxy and gfmon. */
/* SPDX-License-Identifier: MIT */
#include "instance_cli.h"

#include "cli.h"
#include "ipc_rundir.h"

void instance_cli_option(const char *prog, const char *arg)
{
    if (ipc_instance_set(arg) < 0)
        cli_fail(prog, "--instance: '%s': not an instance name (" IPC_INSTANCE_RULE ")", arg);
}
