#include "daemon/chat/jinja_template.h"

#include <gtest/gtest.h>

#include <string>

namespace edgellm::chat::jinja {
namespace {

// Renders `source` with `variables` (JSON), or "ERROR: message".
std::string Render(const std::string& source, const std::string& variables = "{}", ParseOptions options = {}) {
  absl::StatusOr<Template> t = Template::Parse(source, options);
  if (!t.ok()) return "ERROR: " + std::string(t.status().message());
  absl::StatusOr<std::string> out = t->Render(Value::FromJson(nlohmann::ordered_json::parse(variables)));
  if (!out.ok()) return "ERROR: " + std::string(out.status().message());
  return *out;
}

TEST(JinjaTemplate, PrintsValuesAsPythonDoes) {
  EXPECT_EQ(Render("{{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 0.00001 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 / 2 }}"),
            "1.0 0.30000000000000004 1e+16 1000000000000000.0 1e-05 3 -4 3.5");
  EXPECT_EQ(Render("{{ none }} {{ true }} {{ [1, 'a', none] }} {{ {'k': \"it's\"} }} {{ undefined_name }}|"),
            "None True [1, 'a', None] {'k': \"it's\"} |");
  EXPECT_EQ(Render("{{ 'a' ~ 1 ~ none }} {{ 'ab' * 3 }} {{ -7 % 3 }} {{ 2 ** 10 }}"), "a1None ababab 2 1024");
  EXPECT_EQ(Render("{{ 1e999 }} {{ -1e999 }} {{ (1, 'a') }} {{ (1,) }} {{ (1, 2) == [1, 2] }}"),
            "inf -inf (1, 'a') (1,) False");
}

TEST(JinjaTemplate, ToJsonIsTransformersJsonDumps) {
  const std::string data = R"({"x": {"b": [1, 2.5, "é\n\"q\""], "a": {}, "c": [], "d": null, "e": true}})";
  EXPECT_EQ(Render("{{ x | tojson }}", data),
            R"({"b": [1, 2.5, "é\n\"q\""], "a": {}, "c": [], "d": null, "e": true})");
  EXPECT_EQ(Render("{{ x.b | tojson(indent=2) }}", data), "[\n  1,\n  2.5,\n  \"é\\n\\\"q\\\"\"\n]");
  EXPECT_EQ(Render("{{ x | tojson(sort_keys=true) }}", data),
            R"({"a": {}, "b": [1, 2.5, "é\n\"q\""], "c": [], "d": null, "e": true})");
  EXPECT_NE(Render("{{ [1] | map('string') | tojson }}").find("not JSON serializable"), std::string::npos);
  // As json.dumps, a negative indent breaks lines without spaces; a hostile
  // width (found by fuzz.chat_template) is refused, not multiplied into the output.
  EXPECT_EQ(Render("{{ [1, 2] | tojson(indent=-3) }}"), "[\n1,\n2\n]");
  EXPECT_NE(Render("{{ [1] | tojson(indent=1000000000) }}").find("indent 1000000000 is more than 64"),
            std::string::npos);
}

TEST(JinjaTemplate, WhitespaceControlAndBlockTrimming) {
  EXPECT_EQ(Render("a  {{- 'b' -}}  \n c"), "abc");
  EXPECT_EQ(Render("a\n  {%- if true %}\nb{% endif -%}\n\nc"), "a\nbc");
  EXPECT_EQ(Render("{# note #}x\n"), "x") << "one trailing newline is dropped";
  ParseOptions hf;
  hf.trim_blocks = hf.lstrip_blocks = true;
  EXPECT_EQ(Render("{% if true %}\n    {% if true %}\nin\n    {% endif %}\n{% endif %}\nout", "{}", hf), "in\nout");
  EXPECT_EQ(Render("  x {% if true %}\ny{% endif %}", "{}", hf), "  x y") << "only at a line's start";
}

TEST(JinjaTemplate, LoopsExposeLoopAndScopeTheirAssignments) {
  EXPECT_EQ(Render("{% for x in xs if x != 2 %}{{ loop.index }}{{ x }}{{ '|' if not loop.last }}{% endfor %}",
                   R"({"xs": [1, 2, 3]})"),
            "11|23");
  EXPECT_EQ(Render("{% for k, v in d | items %}{{ k }}={{ v }};{% else %}none{% endfor %}", R"({"d": {"b": 1, "a": 2}})"),
            "b=1;a=2;");
  EXPECT_EQ(Render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(Render("{% set n = 0 %}{% set ns = namespace(n=0) %}{% for x in [1, 2] %}{% set n = n + x %}"
                   "{% set ns.n = ns.n + x %}{% endfor %}{{ n }} {{ ns.n }}"),
            "0 3");
  EXPECT_EQ(Render("{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}"
                   "{% endif %}{{ x }}{{ loop.previtem }}{% endfor %}"),
            "132");
}

TEST(JinjaTemplate, MacrosFiltersTestsAndMethods) {
  EXPECT_EQ(Render("{% macro greet(name, greeting='Hi') %}{{ greeting }}, {{ name }}{% endmacro %}"
                   "{{ greet('Ann') }}/{{ greet('Bo', greeting='Yo') }}"),
            "Hi, Ann/Yo, Bo");
  EXPECT_EQ(Render("{{ '  a b  ' | trim }}|{{ 'a,b,,c'.split(',') }}|{{ ' x y '.split() }}|{{ 'Hi'.upper() }}"
                   "|{{ 'abc'[::-1] }}|{{ [1, 2, 3][1:] }}|{{ 'abc'.startswith('ab') }}"),
            "a b|['a', 'b', '', 'c']|['x', 'y']|HI|cba|[2, 3]|True");
  EXPECT_EQ(Render("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(', ') }}",
                   R"({"ms": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"},
                              {"role": "user", "content": "c"}]})"),
            "a, c");
  EXPECT_EQ(Render("{{ x is defined }} {{ y is none }} {{ 3 is divisibleby 3 }} {{ 'a' is string }} {{ x is not mapping }}",
                   R"({"x": 1, "y": null})"),
            "True True True True True");
  EXPECT_EQ(Render("{{ 'a\nb\n\nc' | indent(2) }}|{{ missing | default('d') }}|{{ [3, 1] | length }}"),
            "a\n  b\n\n  c|d|2");
  EXPECT_EQ(Render("{% set x %}{% filter upper %}in{% endfilter %}{% endset %}{{ x }}"), "IN");
  EXPECT_EQ(Render("{{ d.items() | list }} {{ d.get('z', 0) }} {{ d['a'] }} {{ d.a }}", R"({"d": {"a": 1}})"),
            "[('a', 1)] 0 1 1");
}

TEST(JinjaTemplate, ErrorsNameTheLineAndTheConstruct) {
  EXPECT_EQ(Render("a\n{{ x | nosuchfilter }}"), "ERROR: line 2: the filter 'nosuchfilter' is not supported");
  EXPECT_EQ(Render("{% if x %}\n{% include 'y' %}{% endif %}"), "ERROR: line 2: the statement 'include' is not supported");
  EXPECT_EQ(Render("{% for x in y %}"), "ERROR: line 1: the template ends inside a block (expected else)");
  EXPECT_EQ(Render("x\n\n{{ raise_exception('no system role') }}"), "ERROR: line 3: the template raised: no system role");
  EXPECT_EQ(Render("{{ x.y }}"), "ERROR: line 1: 'y' of an undefined value");
  EXPECT_EQ(Render("{{ 1 + 'a' }}"), "ERROR: line 1: unsupported operand types for +: 1 and 'a'");
  EXPECT_EQ(Render("{{ 'unclosed }}"), "ERROR: line 1: a string is not closed");
}

TEST(JinjaTemplate, RunawayTemplatesStop) {
  EXPECT_EQ(Render("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}"),
            "ERROR: line 1: an expression nests too deep");
  std::string nested;
  for (int i = 0; i < 500; ++i) nested += "{% if true %}";
  EXPECT_EQ(Render(nested), "ERROR: line 1: blocks nest too deep");
  EXPECT_EQ(Render("{% set s = 'xx' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}{{ s | length }}"),
            "ERROR: line 1: a value passed 16 MiB or 1,000,000 items");
  EXPECT_EQ(Render("{% set l = [1, 2] %}{% for i in range(40) %}{% set l = l + l %}{% endfor %}"),
            "ERROR: line 1: a value passed 16 MiB or 1,000,000 items");
  EXPECT_EQ(Render("{{ ('x' * 1000) * 100000 }}"), "ERROR: line 1: a repetition passed 16 MiB");
  EXPECT_EQ(Render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
            "ERROR: line 1: the template runs too long");
  EXPECT_NE(Render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").find("nests too deep"), std::string::npos);
  EXPECT_NE(Render("{% for i in range(100000) %}{% for j in range(100000) %}" + std::string(200, 'x') +
                   "{% endfor %}{% endfor %}")
                .find("passed 16 MiB"),
            std::string::npos);
}

}  // namespace
}  // namespace edgellm::chat::jinja
