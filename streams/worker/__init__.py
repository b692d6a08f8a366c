"""The long-running stream worker: Faust app, table-backed state, idle ticks, outputs."""
