# stubcc.awk: the compile half of tools/stubcc (one awk process per object file).
function die(msg) { print "stubcc: " msg > "/dev/stderr"; failed = 1; exit 1 }
function exists(p,    t, r) { r = (getline t < p); if (r >= 0) { close(p); return 1 }; return 0 }
function dirname(p,    d) { d = p; if (sub(/\/[^\/]*$/, "", d) == 0) return ""; return d }
function resolve(name, d,    c, j) {
  if (substr(name, 1, 1) == "/") return exists(name) ? name : ""
  c = (d == "" ? name : d "/" name)
  if (c in seen || exists(c)) return c
  for (j = 1; j <= ninc; j++) {
    c = incdir[j] "/" name
    if (c in seen || exists(c)) return c
  }
  return ""
}
BEGIN {
  ninc = 0; src = ""; out = ""; mmd = 0; mp = 0; mf = ""
  for (i = 1; i < ARGC; i++) {
    a = ARGV[i]
    if (a == "-o") out = ARGV[++i]
    else if (a == "-I") incdir[++ninc] = ARGV[++i]
    else if (substr(a, 1, 2) == "-I") incdir[++ninc] = substr(a, 3)
    else if (a == "-MF") mf = ARGV[++i]
    else if (a == "-MT" || a == "-MQ") ++i
    else if (a == "-MMD" || a == "-MD") mmd = 1
    else if (a == "-MP") mp = 1
    else if (substr(a, 1, 1) == "-") continue
    else if (src == "") src = a
    else die("more than one source file: " src " " a)
  }
  if (src == "") die("no source file")
  if (out == "") die("no -o OUTPUT given")
  order[1] = src; seen[src] = 1; n = 1
  for (k = 1; k <= n; k++) {
    f = order[k]; d = dirname(f); body = ""
    while ((r = (getline line < f)) > 0) {
      body = body line "\n"
      if (line ~ /^[ \t]*#[ \t]*include[ \t]*"/) {
        name = line; sub(/^[^"]*"/, "", name); sub(/".*$/, "", name)
        p = resolve(name, d)
        if (p == "") die(f ": '" name "' not found")
        if (!(p in seen)) { seen[p] = 1; order[++n] = p }
      }
    }
    if (r < 0) die("cannot read " f)
    close(f)
    text[k] = body
  }
  printf "stubcc object\n" > out
  for (k = 1; k <= n; k++) printf "== %s\n%s", order[k], text[k] > out
  close(out)
  if (mmd) {
    dep = mf
    if (dep == "") { dep = out; sub(/\.[^.\/]*$/, "", dep); dep = dep ".d" }
    line = out ":"
    for (k = 1; k <= n; k++) line = line " " order[k]
    print line > dep
    if (mp) for (k = 2; k <= n; k++) print "\n" order[k] ":" > dep
    close(dep)
  }
  exit 0
}
