# fuzz/fuzz.mk — libFuzzer harnesses for the pure-C readers and writers of untrusted bytes.
# Included by the top Makefile (CORE_SRC, CURL_CFLAGS, BUILD come from there).
#   make fuzz-build                  build every harness into $(BUILD)/fuzz/
#   make fuzz [FUZZ_SECONDS=60]      run each one on a scratch copy of fuzz/corpus/<name>
#   make fuzz-ci                     the same, 30 s per harness
#   make fuzz-one FUZZ_NAME=json_read  a single harness
# Crashing inputs land in $(BUILD)/fuzz/artifacts-<name>/; logs in $(BUILD)/fuzz/fuzz_<name>.log.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR      = $(BUILD)/fuzz
FUZZ_NAMES    = json_read json_write urlenc answer fields sms
FUZZ_CFLAGS  ?= -std=c11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_BINS     = $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_NAMES))

# Only the sources each harness needs (none of them needs libcurl).
FUZZ_SRC_json_read  = src/json.c src/utf8.c src/buf.c src/secret.c
FUZZ_SRC_json_write = src/json.c src/utf8.c src/buf.c src/secret.c
FUZZ_SRC_urlenc     = src/urlenc.c src/buf.c src/secret.c src/utf8.c
FUZZ_SRC_answer     = src/answer.c src/secret.c src/utf8.c
FUZZ_SRC_fields     = src/fields.c src/phone.c src/utf8.c src/json.c src/result.c src/buf.c src/secret.c
FUZZ_SRC_sms        = src/sms.c src/phone.c src/utf8.c

.PHONY: fuzz-deps fuzz-build fuzz fuzz-ci fuzz-one fuzz-clean

fuzz-deps:
	@sh .ci/deps fuzz

define FUZZ_template
$(FUZZ_DIR)/fuzz_$(1): fuzz/fuzz_$(1).c fuzz/fuzz_util.h $$(filter $$(FUZZ_SRC_$(1)),$$(CORE_SRC)) $$(wildcard src/*.h) fuzz/fuzz.mk | fuzz-deps
	@mkdir -p $$(@D)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) -Isrc $$(CURL_CFLAGS) -o $$@ fuzz/fuzz_$(1).c $$(FUZZ_SRC_$(1)) -lm
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call FUZZ_template,$(n))))

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@sh fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_NAMES)

fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=30

fuzz-one: $(FUZZ_DIR)/fuzz_$(FUZZ_NAME)
	@sh fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_NAME)

fuzz-clean:
	rm -rf $(FUZZ_DIR)
