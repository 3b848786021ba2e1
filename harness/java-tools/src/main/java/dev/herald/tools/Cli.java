package dev.herald.tools;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Minimal command-line parser shared by the tools: {@code --name value} or
 * {@code --name=value}; an option may be repeated. Unknown options and missing
 * values are usage errors (exit code 64).
 */
final class Cli {
    static final int EXIT_USAGE = 64;

    private final String tool;
    private final String usage;
    private final Map<String, List<String>> values = new LinkedHashMap<>();

    private Cli(String tool, String usage) {
        this.tool = tool;
        this.usage = usage;
    }

    /** Parses {@code args}; every option in {@code known} takes one value. */
    static Cli parse(String tool, String usage, String[] args, Set<String> known) {
        Cli cli = new Cli(tool, usage);
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (arg.equals("-h") || arg.equals("--help")) {
                System.out.println("usage: " + usage);
                System.exit(0);
            }
            if (!arg.startsWith("--")) {
                cli.usageError("unexpected argument '" + arg + "'");
            }
            String name;
            String value;
            int eq = arg.indexOf('=');
            if (eq > 0) {
                name = arg.substring(2, eq);
                value = arg.substring(eq + 1);
            } else {
                name = arg.substring(2);
                if (i + 1 >= args.length) {
                    cli.usageError("option --" + name + " needs a value");
                }
                value = args[++i];
            }
            if (!known.contains(name)) {
                cli.usageError("unknown option --" + name);
            }
            cli.values.computeIfAbsent(name, k -> new ArrayList<>()).add(value);
        }
        return cli;
    }

    String required(String name) {
        String v = optional(name, null);
        if (v == null) {
            usageError("missing required option --" + name);
        }
        return v;
    }

    String optional(String name, String dflt) {
        List<String> vs = values.get(name);
        if (vs == null || vs.isEmpty()) {
            return dflt;
        }
        if (vs.size() > 1) {
            usageError("option --" + name + " given more than once");
        }
        return vs.get(0);
    }

    List<String> all(String name) {
        List<String> vs = values.get(name);
        return vs == null ? Collections.emptyList() : vs;
    }

    int requiredInt(String name) {
        return toInt(name, required(name));
    }

    int optionalInt(String name, int dflt) {
        String v = optional(name, null);
        return v == null ? dflt : toInt(name, v);
    }

    long optionalLong(String name, long dflt) {
        String v = optional(name, null);
        if (v == null) {
            return dflt;
        }
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            usageError("option --" + name + " needs an integer, got '" + v + "'");
            return dflt;
        }
    }

    private int toInt(String name, String v) {
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            usageError("option --" + name + " needs an integer, got '" + v + "'");
            return 0;
        }
    }

    void usageError(String message) {
        System.err.println(tool + ": " + message);
        System.err.println("usage: " + usage);
        System.exit(EXIT_USAGE);
    }

    /** Prints {@code tool: message} on stderr and exits with {@code code}. */
    static void fail(String tool, int code, String message) {
        System.err.println(tool + ": " + message);
        System.err.flush();
        System.exit(code);
    }
}
