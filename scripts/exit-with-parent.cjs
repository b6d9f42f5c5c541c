// Preloaded into Chopsticks by scripts/chopsticks.sh (`node --require`). When the process that
// started it set ORCHESTRA_PARENT_PID to its own pid (orchestra-devnet does), exit as soon as that
// process is gone — even killed with SIGKILL — instead of running on as an orphan.
"use strict";
const parent = Number(process.env.ORCHESTRA_PARENT_PID);
if (Number.isInteger(parent) && parent > 0) {
  setInterval(() => {
    if (process.ppid !== parent) {
      process.exit(0);
    }
  }, 250).unref();
}
