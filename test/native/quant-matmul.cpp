// Matrix products with quantized weights, as a CPU model computes them, against a reference computed
// here in double precision from ggml's own (portable) dequantization. Each weight type is run from a
// plain buffer (ggml's row-by-row dot products) and, where the CPU backend repacks it, from its
// repacked buffer (the kernels llama.cpp decodes with: ggml's, or the nanochat machine build's own).
//
// - Weights whose activations are quantized to q8_0 (q4_0, q5_0, q8_0): the reference multiplies by
//   q8_0 activations from ggml's reference quantization, so the blocks' integer dot products are exact;
//   the CPU's own quantization may round an element the other way (its scale differs in the last bit):
//   NMSE < 1e-6 (measured up to 2e-8; one block in 600 computed wrong is 1e-3).
// - k-quants (q4_K, q6_K) take q8_K activations, which ggml does not dequantize: the reference multiplies
//   by the float activations, so their quantization error is allowed (NMSE < 5e-4, measured up to
//   1.5e-4).
// - A repacked product must match the plain one within float rounding (NMSE < 1e-10).
//
// usage: quant-matmul [threads...]   (default 1 2 3); prints one line per case, exits 1 on a mismatch.
#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

static ggml_backend_buffer_type_t repack_buffer_type() {
    ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (!dev) return nullptr;
    auto get = (ggml_backend_dev_get_extra_bufts_t) ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev), "ggml_backend_dev_get_extra_bufts");
    if (!get) return nullptr;
    for (ggml_backend_buffer_type_t * t = get(dev); t && *t; t++) {
        if (std::string(ggml_backend_buft_name(*t)) == "CPU_REPACK") return *t;
    }
    return nullptr;
}

// out = weight (k x n, `type`) times x (k x m), with the weight in `buft`.
static std::vector<float> multiply(ggml_backend_t backend, ggml_backend_buffer_type_t buft, ggml_type type, const std::vector<uint8_t> & q, const std::vector<float> & x, int k, int n, int m) {
    ggml_init_params wp = { ggml_tensor_overhead() * 4, nullptr, true };
    ggml_context * wctx = ggml_init(wp);
    ggml_tensor * w = ggml_new_tensor_2d(wctx, type, k, n);
    ggml_backend_buffer_t wbuf = ggml_backend_alloc_ctx_tensors_from_buft(wctx, buft);
    ggml_backend_tensor_set(w, q.data(), 0, q.size()); // a repacked buffer repacks here

    ggml_init_params cp = { ggml_tensor_overhead() * 8 + ggml_graph_overhead(), nullptr, true };
    ggml_context * ctx = ggml_init(cp);
    ggml_tensor * xt = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, m);
    ggml_tensor * out = ggml_mul_mat(ctx, w, xt);
    ggml_cgraph * graph = ggml_new_graph(ctx);
    ggml_build_forward_expand(graph, out);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, backend);
    ggml_backend_tensor_set(xt, x.data(), 0, x.size() * sizeof(float));
    if (ggml_backend_graph_compute(backend, graph) != GGML_STATUS_SUCCESS) { fprintf(stderr, "compute failed\n"); exit(2); }
    std::vector<float> result((size_t) n * m);
    ggml_backend_tensor_get(out, result.data(), 0, result.size() * sizeof(float));
    ggml_backend_buffer_free(buf);
    ggml_free(ctx);
    ggml_backend_buffer_free(wbuf);
    ggml_free(wctx);
    return result;
}

static double nmse(const std::vector<float> & got, const std::vector<double> & want) {
    double err = 0, ref = 0;
    for (size_t i = 0; i < got.size(); i++) {
        err += (got[i] - want[i]) * (got[i] - want[i]);
        ref += want[i] * want[i];
    }
    return ref > 0 ? err / ref : err;
}

int main(int argc, char ** argv) {
    std::vector<int> threads;
    for (int i = 1; i < argc; i++) threads.push_back(atoi(argv[i]));
    if (threads.empty()) threads = { 1, 2, 3 };

    ggml_log_set([](ggml_log_level, const char *, void *) {}, nullptr); // the repack logs each weight
    ggml_backend_load_all();
    ggml_backend_buffer_type_t repack = repack_buffer_type();
    if (!repack) { fprintf(stderr, "no CPU_REPACK buffer type in this ggml\n"); return 2; }
    ggml_backend_t backend = ggml_backend_cpu_init();

    // k: the row length (224 and 480 are odd block counts; 18944 makes 592 blocks of 32), n: output
    // rows (multiples of 8, as the repack needs), m: columns of x (1 is a generated token's product;
    // 2-5 take the batched kernels and their leftovers).
    const ggml_type types[] = { GGML_TYPE_Q4_0, GGML_TYPE_Q5_0, GGML_TYPE_Q8_0, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K };
    const int ks[] = { 224, 256, 480, 896, 4864, 18944 };
    const int ns[] = { 8, 24, 136 };
    const int ms[] = { 1, 2, 4, 5 };
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    int failures = 0, cases = 0;
    for (ggml_type type : types) {
        const ggml_type dot_type = ggml_get_type_traits_cpu(type)->vec_dot_type;
        const bool exact = dot_type == GGML_TYPE_Q8_0;
        for (int k : ks) {
            if (k % ggml_blck_size(type) != 0) continue;
            for (int n : ns) {
                std::vector<float> wf((size_t) k * n);
                for (float & v : wf) v = normal(rng) * 0.05f;
                for (size_t i = 0; i < wf.size(); i += 997) wf[i] *= 40.0f; // blocks of very different scales
                std::vector<uint8_t> q(ggml_row_size(type, k) * n);
                ggml_quantize_chunk(type, wf.data(), q.data(), 0, n, k, nullptr);
                std::vector<float> wd((size_t) k * n);
                ggml_get_type_traits(type)->to_float(q.data(), wd.data(), (int64_t) k * n);
                for (int m : ms) {
                    std::vector<float> x((size_t) k * m);
                    for (float & v : x) v = normal(rng);
                    std::vector<float> xr = x; // what the reference multiplies by
                    if (exact) {
                        std::vector<uint8_t> xq(ggml_row_size(GGML_TYPE_Q8_0, k) * m);
                        ggml_quantize_chunk(GGML_TYPE_Q8_0, x.data(), xq.data(), 0, m, k, nullptr);
                        ggml_get_type_traits(GGML_TYPE_Q8_0)->to_float(xq.data(), xr.data(), (int64_t) k * m);
                    }
                    std::vector<double> want((size_t) n * m);
                    for (int j = 0; j < m; j++) for (int i = 0; i < n; i++) {
                        double sum = 0;
                        for (int e = 0; e < k; e++) sum += (double) wd[(size_t) i * k + e] * xr[(size_t) j * k + e];
                        want[(size_t) j * n + i] = sum;
                    }
                    const double tolerance = exact ? 1e-6 : 5e-4;
                    for (int t : threads) {
                        ggml_backend_cpu_set_n_threads(backend, t);
                        const std::vector<float> plain = multiply(backend, ggml_backend_cpu_buffer_type(), type, q, x, k, n, m);
                        const double e_plain = nmse(plain, want);
                        bool ok = std::isfinite(e_plain) && e_plain < tolerance;
                        printf("%s %-4s plain  k=%d n=%d m=%d threads=%d nmse=%.3g\n", ok ? "ok  " : "FAIL", ggml_type_name(type), k, n, m, t, e_plain);
                        cases++;
                        failures += ok ? 0 : 1;
                        if (type != GGML_TYPE_Q4_0 && type != GGML_TYPE_Q4_K) continue;
                        const std::vector<float> packed = multiply(backend, repack, type, q, x, k, n, m);
                        const double e_packed = nmse(packed, want);
                        std::vector<double> plain_d(plain.begin(), plain.end());
                        const double e_between = nmse(packed, plain_d);
                        ok = std::isfinite(e_packed) && e_packed < tolerance && std::isfinite(e_between) && e_between < 1e-10;
                        printf("%s %-4s repack k=%d n=%d m=%d threads=%d nmse=%.3g (against plain %.3g)\n", ok ? "ok  " : "FAIL", ggml_type_name(type), k, n, m, t, e_packed, e_between);
                        cases++;
                        failures += ok ? 0 : 1;
                    }
                }
            }
        }
    }
    printf("%d/%d cases agree\n", cases - failures, cases);
    ggml_backend_free(backend);
    return failures == 0 ? 0 : 1;
}
