// llamacpp_golden: the golden logits and greedy ids of a GGUF model from
// llama.cpp itself (libllama as shipped prebuilt in the npm package
// @node-llama-cpp/linux-x64; see llamacpp_golden.py, which builds and runs
// this program).
//
//   llamacpp_golden MODEL.gguf OUT.f32 N_GREEDY ID,ID,...
//
// Decodes the prompt ids in one batch with logits at every position,
// writes them to OUT.f32 (little-endian float32, [prompt length, n_vocab]),
// then decodes greedily (argmax, lowest id on ties) one token at a time
// for N_GREEDY tokens and prints
//
//   greedy: ID ID ...
//   margins: GAP GAP ...     (top-1 minus top-2 logit at each greedy step)
//
// The context holds keys and values in float32 and flash attention is off,
// so nothing is rounded to float16 on the way.
#include "llama.h"
#include "ggml-backend.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static void quiet(enum ggml_log_level level, const char * text, void *) {
    if (level >= GGML_LOG_LEVEL_WARN) fputs(text, stderr);
}

int main(int argc, char ** argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: llamacpp_golden MODEL.gguf OUT.f32 N_GREEDY ID,ID,...\n");
        return 2;
    }
    llama_log_set(quiet, nullptr);
    const char * dir = getenv("LLAMACPP_LIB_DIR");
    if (dir) ggml_backend_load_all_from_path(dir); else ggml_backend_load_all();
    llama_backend_init();

    std::vector<llama_token> prompt;
    const std::string ids = argv[4];
    for (size_t p = 0; p < ids.size();) {
        size_t q = ids.find(',', p);
        if (q == std::string::npos) q = ids.size();
        prompt.push_back((llama_token) atoi(ids.substr(p, q - p).c_str()));
        p = q + 1;
    }
    const int n_greedy = atoi(argv[3]);

    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "%s: load failed\n", argv[1]); return 1; }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

    llama_context_params cp = llama_context_default_params();
    const int n_prompt = (int) prompt.size();
    cp.n_ctx = n_prompt + n_greedy + 16;
    cp.n_batch = cp.n_ctx;
    cp.n_ubatch = cp.n_ctx;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "context failed\n"); return 1; }

    llama_batch batch = llama_batch_init(n_prompt, 0, 1);
    for (int i = 0; i < n_prompt; i++) {
        batch.token[i] = prompt[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = n_prompt;
    if (llama_decode(ctx, batch)) { fprintf(stderr, "prompt decode failed\n"); return 1; }
    FILE * f = fopen(argv[2], "wb");
    if (!f) { perror(argv[2]); return 1; }
    for (int i = 0; i < n_prompt; i++) {
        fwrite(llama_get_logits_ith(ctx, i), sizeof(float), n_vocab, f);
    }
    fclose(f);
    llama_batch_free(batch);

    std::vector<llama_token> out;
    std::vector<float> gaps;
    for (int step = 0; step < n_greedy; step++) {
        const float * lg = llama_get_logits_ith(ctx, -1);
        int best = 0;
        for (int j = 1; j < n_vocab; j++) if (lg[j] > lg[best]) best = j;
        int second = best == 0 ? 1 : 0;
        for (int j = 0; j < n_vocab; j++) if (j != best && lg[j] > lg[second]) second = j;
        out.push_back(best);
        gaps.push_back(lg[best] - lg[second]);
        if (step + 1 == n_greedy) break;
        llama_token t = best;
        if (llama_decode(ctx, llama_batch_get_one(&t, 1))) { fprintf(stderr, "decode failed at step %d\n", step); return 1; }
    }
    printf("greedy:");
    for (auto t : out) printf(" %d", t);
    printf("\nmargins:");
    for (auto g : gaps) printf(" %.6g", g);
    printf("\n");
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
