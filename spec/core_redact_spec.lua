-- core.new_masker (src/redact.c): the one-pass masking under errors.scrub and errors.redact,
-- checked against a plain Lua statement of the rule on texts built from pieces of secrets.
local core = require("aliyun.iot.core")

-- The rule, position by position: a byte is masked when it lies in a `cut`-byte piece of a
-- form of at least `cut` bytes, or in a whole occurrence of a shorter form (of every form
-- when cut is 0); each run of masked bytes becomes "***".
local function reference(text, forms, cut)
  local masked = {}
  local function mark(i, j) for k = i, j do masked[k] = true end end
  local pieces = {}
  for _, f in ipairs(forms) do
    if cut > 0 and #f >= cut then
      for i = 1, #f - cut + 1 do pieces[f:sub(i, i + cut - 1)] = true end
    else
      local start = 1
      while true do
        local i, j = text:find(f, start, true)
        if not i then break end
        mark(i, j)
        start = i + 1
      end
    end
  end
  if cut > 0 then
    for i = 1, #text - cut + 1 do
      if pieces[text:sub(i, i + cut - 1)] then mark(i, i + cut - 1) end
    end
  end
  local out, i = {}, 1
  while i <= #text do
    if masked[i] then
      out[#out + 1] = "***"
      while masked[i] do i = i + 1 end
    else
      out[#out + 1] = text:sub(i, i)
      i = i + 1
    end
  end
  return table.concat(out)
end

describe("core.new_masker", function()
  local forms = { "Xy7 sEcr/t+Kq=Z", "Xy7%20sEcr%2Ft%2BKq%3DZ", "pw", "a\0b", "zzzzzzzzzz" }

  it("masks as the rule says, on 3,000 texts made of pieces of the forms and noise", function()
    math.randomseed(20261202)
    local noise = { "", " ", "x", "%", "%2", "\0", "Z", "zz", "message: ", "\r\n" }
    for round = 1, 3000 do
      local parts = {}
      for _ = 1, math.random(0, 8) do
        if math.random(2) == 1 then
          local f = forms[math.random(#forms)]
          local i = math.random(#f)
          parts[#parts + 1] = f:sub(i, math.random(i, #f))
        else
          parts[#parts + 1] = noise[math.random(#noise)]
        end
      end
      local text = table.concat(parts)
      for _, cut in ipairs({ 0, 1, 3, 8 }) do
        local got = core.new_masker(forms, cut):mask(text)
        local want = reference(text, forms, cut)
        if got ~= want then
          error(("round %d, cut %d: %q gave %q, the rule %q"):format(round, cut, text, got, want))
        end
      end
    end
  end)

  it("gives back the same string when nothing is masked, and masks nothing with no forms", function()
    local text = "a message with nothing secret in it"
    assert.equal(text, core.new_masker(forms, 8):mask(text))
    assert.equal("", core.new_masker(forms, 8):mask(""))
    assert.equal("Xy7 sEcr/t+Kq=Z", core.new_masker({}, 8):mask("Xy7 sEcr/t+Kq=Z"))
  end)

  it("masks a secret at the very start and the very end of a text, and a text that is all secret", function()
    local m = core.new_masker({ "0123456789" }, 8)
    assert.equal("***-***", m:mask("01234567-23456789"))
    assert.equal("***", m:mask("0123456789"))
    assert.equal("***", m:mask("01234567234567890123456789"))
  end)

  it("rejects what is not a list of non-empty strings, and a cut outside 0..8", function()
    assert.has_error(function() core.new_masker({ "ok", "" }, 8) end)
    assert.has_error(function() core.new_masker({ 1 }, 8) end)
    assert.has_error(function() core.new_masker("x", 8) end)
    assert.has_error(function() core.new_masker({ "x" }, 9) end)
    assert.has_error(function() core.new_masker({ "x" }, -1) end)
  end)

  it("never shows the secrets it holds in tostring", function()
    local s = tostring(core.new_masker({ "Xy7 sEcr/t+Kq=Z" }, 8))
    assert.matches("^aliyun%.iot%.Masker", s)
    assert.is_nil(s:find("sEcr", 1, true))
  end)
end)
