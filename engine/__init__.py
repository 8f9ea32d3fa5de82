"""The UI-free core: session, control loop, procedures, recorder, dataset I/O, jobs. Never imports textual/rich."""
