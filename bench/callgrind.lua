-- callgrind.lua — reads the callgrind files of `make bench` directly (callgrind_annotate takes
-- minutes on a busy machine): totals, self cost per object and per function, the call tree, and
-- the per-request view as the difference of two runs of N1 and N2 requests. Loaded by run.lua.
--
-- Needs callgrind's default output (events: Ir, --dump-instr=no, no --collect-jumps). Functions
-- are keyed by name in the call tree (the rare static function of the same name in two objects
-- shares a node); the self costs are kept per object and function.

local M = {}

-- The total Ir of a file (its summary line), or nil.
function M.total(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local v = s:match("\nsummary:%s*(%d+)") or s:match("\ntotals:%s*(%d+)")
  return tonumber(v)
end

-- What one file holds: incl[fn] = inclusive Ir (self + the calls it makes), edges[fn][callee] =
-- { ir, calls } with the inclusive cost of those calls, objs[fn] = its object's file name,
-- self_ob[object] = self Ir, self_fn[object .. "\0" .. fn] = self Ir.
local cache = {}
function M.read(file)
  if cache[file] then return cache[file] end
  local fn_names, ob_names = {}, {}
  local function name_of(spec, names) -- "(id) name" defines, "(id)" refers, "name" is plain
    local id, name = spec:match("^%((%d+)%)%s*(.*)$")
    if not id then return spec end
    if name ~= "" then names[id] = name return name end
    return names[id] or ("?" .. id)
  end
  local self_ir, edges, objs, self_ob, self_fn = {}, {}, {}, {}, {}
  local ob, fn, fnkey, cfn, calls = "?", nil, nil, nil, nil
  for line in io.lines(file) do
    local b = line:byte(1)
    if calls then -- the cost line after calls=: inclusive cost of those calls
      local ir = tonumber(line:match("^%S+%s+(%d+)")) or 0
      local e = edges[fn][cfn]
      if not e then e = { ir = 0, calls = 0 } edges[fn][cfn] = e end
      e.ir, e.calls = e.ir + ir, e.calls + calls
      calls = nil
    elseif b and ((b >= 48 and b <= 57) or b == 43 or b == 45 or b == 42) then -- "pos cost": self cost
      if fn then
        local ir = tonumber(line:match("^%S+%s+(%d+)")) or 0
        self_ir[fn] = (self_ir[fn] or 0) + ir
        self_ob[ob] = (self_ob[ob] or 0) + ir
        self_fn[fnkey] = (self_fn[fnkey] or 0) + ir
      end
    elseif line:sub(1, 3) == "fn=" then
      fn = name_of(line:sub(4), fn_names)
      fnkey = ob .. "\0" .. fn
      edges[fn] = edges[fn] or {}
      objs[fn] = objs[fn] or ob
    elseif line:sub(1, 3) == "ob=" then
      ob = name_of(line:sub(4), ob_names):match("([^/]+)$")
    elseif line:sub(1, 4) == "cob=" then
      name_of(line:sub(5), ob_names)
    elseif line:sub(1, 4) == "cfn=" then
      cfn = name_of(line:sub(5), fn_names)
    elseif line:sub(1, 6) == "calls=" then
      calls = tonumber(line:match("^calls=(%d+)")) or 0
    end
  end
  local incl = {}
  for f, es in pairs(edges) do
    local v = self_ir[f] or 0
    for callee, e in pairs(es) do if callee ~= f then v = v + e.ir end end
    incl[f] = v
  end
  cache[file] = { incl = incl, edges = edges, objs = objs, self_ob = self_ob, self_fn = self_fn }
  return cache[file]
end

-- Where the instructions go, per object: groups of objects, in the order shown.
M.GROUPS = {
  { name = "libcurl", "^libcurl" },
  { name = "TLS (libssl, libcrypto)", "^libssl", "^libcrypto" },
  { name = "libc, libm, ld.so", "^libc%.so", "^libm%.so", "^ld%-linux", "^libpthread" },
  { name = "smsend.so", "^smsend%.so$" },
  { name = "Lua VM", "^lua5%.4$", "^liblua5%.4%.so", "^luajit", "^libluajit" },
  { name = "unnamed code (PLT stubs; LuaJIT's machine code)", "^%?%?%?$" },
  { name = "the client's own C (the C loop; pollwait.so; LuaSocket, LuaSec, cjson)", "^bare$", "^limit$",
    "^pollwait%.so$", "^liblua5%.%d%-", "^core%.so$", "^ssl%.so$", "^cjson%.so$" },
  { name = "other (nghttp2, zlib, ...)" },
}

local function group_of(ob)
  for i, g in ipairs(M.GROUPS) do
    for _, pat in ipairs(g) do if ob:find(pat) then return i end end
  end
  return #M.GROUPS
end

-- Per-request self Ir per group (N2−N1 difference): { [group index] = Ir }.
function M.by_group(info)
  local a, b = M.read(info.file1), M.read(info.file2)
  local dn, out = info.n2 - info.n1, {}
  for i = 1, #M.GROUPS do out[i] = 0 end
  local seen = {}
  for ob in pairs(b.self_ob) do seen[ob] = true end
  for ob in pairs(a.self_ob) do seen[ob] = true end
  for ob in pairs(seen) do
    local g = group_of(ob)
    out[g] = out[g] + ((b.self_ob[ob] or 0) - (a.self_ob[ob] or 0)) / dn
  end
  return out
end

-- Per-request self Ir per function (N2−N1 difference): { ["object\0fn"] = Ir }.
function M.by_function(info)
  local a, b = M.read(info.file1), M.read(info.file2)
  local dn, out = info.n2 - info.n1, {}
  for k, v in pairs(b.self_fn) do out[k] = (v - (a.self_fn[k] or 0)) / dn end
  for k, v in pairs(a.self_fn) do if not b.self_fn[k] then out[k] = -v / dn end end
  return out
end

-- The functions whose self Ir per request differ most between two rows (row − reference), the
-- largest increases first, then the largest decreases: { { fn, ob, row, ref, delta } ... }.
function M.hot_spots(info, ref_info, more, fewer)
  local r, s = M.by_function(info), M.by_function(ref_info)
  local all = {}
  for k, v in pairs(r) do all[k] = { row = v, ref = s[k] or 0 } end
  for k, v in pairs(s) do if not all[k] then all[k] = { row = 0, ref = v } end end
  local list = {}
  for k, v in pairs(all) do
    local ob, fn = k:match("^(.-)%z(.*)$")
    local d = v.row - v.ref
    if math.abs(d) >= 20 then list[#list + 1] = { fn = fn, ob = ob, row = v.row, ref = v.ref, delta = d } end
  end
  table.sort(list, function(x, y) return x.delta > y.delta end)
  local out = {}
  for i = 1, math.min(more, #list) do if list[i].delta > 0 then out[#out + 1] = list[i] end end
  for i = #list, math.max(1, #list - fewer + 1), -1 do if list[i].delta < 0 then out[#out + 1] = list[i] end end
  return out
end

-- Per-request inclusive Ir of `fn` (N2−N1 difference), or nil when it never ran.
function M.inclusive(info, fn)
  local a, b = M.read(info.file1), M.read(info.file2)
  if not b.incl[fn] then return nil end
  return (b.incl[fn] - (a.incl[fn] or 0)) / (info.n2 - info.n1)
end

-- Per-request call tree below `entry`, by difference of the N1 and N2 files: the lines, and the
-- entry's inclusive Ir per request (nil when it never ran). Functions of smsend.so are expanded.
function M.profile(info, entry, fmt_int)
  local A, B = M.read(info.file1), M.read(info.file2)
  local i1, e1 = A.incl, A.edges
  local i2, e2, objs = B.incl, B.edges, B.objs
  local function label_of(fn) return fn .. " [" .. (objs[fn] or "?") .. "]" end
  local dn = info.n2 - info.n1
  local lines = {}
  if not i2[entry] then return lines, nil end
  -- A function called from several places shows its callees in proportion to this path's share.
  local function walk(fn, depth, per, label)
    local kids = {}
    local all = ((i2[fn] or 0) - (i1[fn] or 0)) / dn
    local share = (all > 0 and per < all) and per / all or 1
    for callee, e in pairs(e2[fn] or {}) do
      local o = (e1[fn] or {})[callee] or { ir = 0, calls = 0 }
      local ir = (e.ir - o.ir) / dn * share
      if ir >= 30 then kids[#kids + 1] = { name = callee, ir = ir, calls = (e.calls - o.calls) / dn * share } end
    end
    table.sort(kids, function(x, y) return x.ir > y.ir end)
    local listed = 0
    for _, k in ipairs(kids) do listed = listed + k.ir end
    local function row(d, text, v)
      local left = string.rep("  ", d) .. text
      lines[#lines + 1] = left .. string.rep(" ", math.max(1, 64 - utf8.len(left))) .. string.format("%9s", fmt_int(v))
    end
    row(depth, label or label_of(fn), per)
    if per - listed >= 30 and #kids > 0 then row(depth + 1, "(self, and calls under 30 Ir)", per - listed) end
    for _, k in ipairs(kids) do
      local text = label_of(k.name) .. (k.calls >= 1.5 and string.format(" ×%g", math.floor(k.calls * 10 + 0.5) / 10) or "")
      if objs[k.name] == "smsend.so" and depth < 6 and k.name ~= fn then
        walk(k.name, depth + 1, k.ir, text)
      else
        row(depth + 1, text, k.ir)
      end
    end
  end
  local per = (i2[entry] - (i1[entry] or 0)) / dn
  walk(entry, 1, per)
  return lines, per
end

return M
