// What every script here does with its command line: reports failures as
// "<program>: <message>" on stderr with exit status 1, and reads
// `--flag value` / `--flag=value` arguments into an options object.

/// A `fail(message)` for `prog`: prints the message and exits 1.
export function failer(prog) {
  return message => {
    process.stderr.write(`${prog}: ${message}\n`);
    process.exit(1);
  };
}

/// Reports what escapes the script (the WebSocket adapter, for one, rethrows
/// socket errors other than ECONNREFUSED, such as an HTTP 401 on upgrade,
/// from an event handler) through `fail`, with `describe`'s text of it.
export function failOnUncaught(fail, describe = err => err?.stack ?? err) {
  process.on("uncaughtException", err => fail(`fatal: ${describe(err)}`));
  process.on("unhandledRejection", err => fail(`fatal: ${describe(err)}`));
}

/// `argv` read into a copy of `defaults`: `names` maps each accepted flag to
/// its option; any other argument, or a flag without its value, fails.
export function parseFlags(argv, names, defaults, fail) {
  const opts = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    let [flag, value] = argv[i].split(/=(.*)/s, 2);
    if (!(flag in names)) fail(`unknown argument ${argv[i]}`);
    if (value === undefined) {
      if (i + 1 >= argv.length) fail(`${flag} needs a value`);
      value = argv[++i];
    }
    opts[names[flag]] = value;
  }
  return opts;
}
