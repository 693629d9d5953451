using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using Xunit;

namespace MLNet.FastTrain.Engine.Tests;

public class OptimizerTests
{
    private static Parameter P(params float[] values) => new(Tensor.FromArray(values));

    private static void SetGrad(Parameter p, params float[] g) => p.Grad = Tensor.FromArray(g);

    [Fact]
    public void Sgd_step_by_hand()
    {
        // p = 1, g = 0.5, lr 0.1, wd 0.2: d = 0.5 + 0.2 = 0.7, p = 1 − 0.07 = 0.93.
        var p = P(1);
        var opt = new Sgd([p], 0.1, weightDecay: 0.2);
        SetGrad(p, 0.5f);
        opt.Step();
        Assert.Equal(0.93f, p.AsSpan()[0], 6);
    }

    [Fact]
    public void Sgd_momentum_two_steps_by_hand()
    {
        // Step 1: b = g = 1, p = 0 − 0.1·1 = −0.1. Step 2: b = 0.9·1 + 1 = 1.9, p = −0.1 − 0.19 = −0.29.
        var p = P(0);
        var opt = new Sgd([p], 0.1, momentum: 0.9);
        SetGrad(p, 1f); opt.Step();
        Assert.Equal(-0.1f, p.AsSpan()[0], 6);
        SetGrad(p, 1f); opt.Step();
        Assert.Equal(-0.29f, p.AsSpan()[0], 6);
    }

    [Fact]
    public void Sgd_nesterov_two_steps_by_hand()
    {
        // Step 1: b = 1, d = 1 + 0.9·1 = 1.9, p = −0.19. Step 2: b = 1.9, d = 1 + 1.71 = 2.71, p = −0.19 − 0.271 = −0.461.
        var p = P(0);
        var opt = new Sgd([p], 0.1, momentum: 0.9, nesterov: true);
        SetGrad(p, 1f); opt.Step();
        Assert.Equal(-0.19f, p.AsSpan()[0], 6);
        SetGrad(p, 1f); opt.Step();
        Assert.Equal(-0.461f, p.AsSpan()[0], 5);
    }

    [Fact]
    public void Adam_first_step_moves_by_the_learning_rate()
    {
        // With bias correction the first step is lr·g/(|g| + ε·…) ≈ lr·sign(g).
        var p = P(1, 1);
        var opt = new Adam([p], 0.01);
        SetGrad(p, 3f, -0.5f);
        opt.Step();
        Assert.Equal(0.99f, p.AsSpan()[0], 5);
        Assert.Equal(1.01f, p.AsSpan()[1], 5);
    }

    [Fact]
    public void AdamW_decay_is_decoupled_from_the_gradient()
    {
        // Zero gradient: Adam's L2 term still produces a full step; AdamW only shrinks p by lr·wd.
        var a = P(2);
        var w = P(2);
        var adam = new Adam([a], 0.1, weightDecay: 0.5);
        var adamw = new AdamW([w], 0.1, weightDecay: 0.5);
        SetGrad(a, 0f); SetGrad(w, 0f);
        adam.Step(); adamw.Step();
        Assert.Equal(1.9f, a.AsSpan()[0], 4);       // step of lr in the direction of wd·p
        Assert.Equal(2 * (1 - 0.05f), w.AsSpan()[0], 5);
        Assert.True(adamw.Decoupled);
        Assert.False(adam.Decoupled);
    }

    [Fact]
    public void Groups_have_their_own_rates_changeable_between_steps()
    {
        var body = P(1);
        var head = P(1);
        var opt = new Sgd([new ParamGroup([body], "body") { LearningRate = 0.01 }, new ParamGroup([head], "head")], learningRate: 0.1);
        Assert.Equal(0.01, opt.Groups[0].LearningRate);
        Assert.Equal(0.1, opt.Groups[1].LearningRate);
        SetGrad(body, 1f); SetGrad(head, 1f);
        opt.Step();
        Assert.Equal(0.99f, body.AsSpan()[0], 6);
        Assert.Equal(0.9f, head.AsSpan()[0], 6);
        opt.Groups[1].LearningRate = 0.5;
        opt.Step();
        Assert.Equal(0.4f, head.AsSpan()[0], 6);
    }

    [Fact]
    public void Parameters_without_gradient_or_frozen_are_left_alone()
    {
        var a = P(1);
        var b = P(1);
        var opt = new Sgd([a, b], 0.1);
        SetGrad(a, 1f);
        opt.Step();
        Assert.Equal(1f, b.AsSpan()[0]);
        a.RequiresGrad = false;
        opt.Step();
        Assert.Equal(0.9f, a.AsSpan()[0], 6);
        opt.ZeroGrad();
        Assert.Null(a.Grad);
    }

    [Fact]
    public void Saved_state_resumes_identically()
    {
        static (Parameter, Adam) Make() { var p = P(1, -2, 3); return (p, new Adam([p], 0.05, weightDecay: 0.01)); }
        var (p1, o1) = Make();
        var grads = new[] { new float[] { 1, 2, 3 }, new float[] { -1, 0.5f, 2 }, new float[] { 0.3f, -0.2f, 1 }, new float[] { 2, 2, -2 } };
        for (int i = 0; i < 2; i++) { SetGrad(p1, grads[i]); o1.Step(); }
        var saved = o1.StateDict();
        var weights = p1.ToArray();
        for (int i = 2; i < 4; i++) { SetGrad(p1, grads[i]); o1.Step(); }

        var (p2, o2) = Make();
        p2.AsSpan().Clear();
        Tensor.FromArray(weights).AsSpan().CopyTo(p2.AsSpan());
        o2.LoadStateDict(saved);
        for (int i = 2; i < 4; i++) { SetGrad(p2, grads[i]); o2.Step(); }
        Assert.Equal(p1.ToArray(), p2.ToArray());
        Assert.Contains("state.0.0.exp_avg", saved.Keys);
        Assert.Contains("group.0.lr", saved.Keys);
    }

    [Fact]
    public void Loading_restores_hyperparameters_and_rejects_foreign_state()
    {
        var p = P(1, 2);
        var opt = new Sgd([p], 0.1, momentum: 0.9);
        SetGrad(p, 1f, 1f);
        opt.Step();
        var saved = opt.StateDict();
        opt.Groups[0].LearningRate = 7;
        opt.LoadStateDict(saved);
        Assert.Equal(0.1, opt.Groups[0].LearningRate);

        var other = new Sgd([P(1, 2, 3)], 0.1, momentum: 0.9);
        var e = Assert.Throws<Serialization.StateDictMismatchException>(() => other.LoadStateDict(saved));
        Assert.Contains("state.0.0.momentum_buffer", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Clear_state_restarts_momentum()
    {
        var p = P(0);
        var opt = new Sgd([p], 0.1, momentum: 0.9);
        SetGrad(p, 1f); opt.Step(); opt.Step();
        opt.ClearState();
        float before = p.AsSpan()[0];
        opt.Step();
        Assert.Equal(before - 0.1f, p.AsSpan()[0], 6); // a fresh buffer: the step is lr·g again
        opt.ClearState(opt.Groups[0]);
        Assert.DoesNotContain(opt.StateDict().Keys, k => k.StartsWith("state.", StringComparison.Ordinal));
    }

    [Fact]
    public void Invalid_hyperparameters_are_rejected_with_the_value()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([P(1)], -0.1));
        Assert.Contains("-0.1", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([P(1)], 0.1, momentum: -1));
        Assert.Throws<ArgumentException>(() => new Sgd([P(1)], 0.1, nesterov: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adam([P(1)], 0.1, beta1: 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW([P(1)], 0.1, weightDecay: -1));
        var shared = P(1);
        Assert.Throws<ArgumentException>(() => new Sgd([new ParamGroup([shared]), new ParamGroup([shared])], 0.1));
        var opt = new Sgd([P(1)], 0.1);
        opt.Groups[0].LearningRate = double.NaN;
        Assert.Throws<ArgumentOutOfRangeException>(() => opt.Step());
    }

    [Fact]
    public void Clip_by_norm_scales_all_gradients_together()
    {
        var a = P(0, 0);
        var b = P(0);
        SetGrad(a, 3f, 0f);
        SetGrad(b, 4f);
        double norm = GradClip.ClipByNorm([a, b], 1.0);
        Assert.Equal(5.0, norm, 6);
        Assert.Equal(0.6f, a.Grad!.AsSpan()[0], 5);
        Assert.Equal(0.8f, b.Grad!.AsSpan()[0], 5);
        SetGrad(a, 0.1f, 0f);
        GradClip.ClipByNorm([a], 1.0);
        Assert.Equal(0.1f, a.Grad!.AsSpan()[0]);
        SetGrad(a, 3f, -7f);
        SetGrad(b, 4f);
        Assert.Equal(7.0, GradClip.ClipByNorm([a, b], 100.0, double.PositiveInfinity), 6);
    }

    [Fact]
    public void Clip_by_value_clamps_elements()
    {
        var a = P(0, 0, 0);
        SetGrad(a, -5f, 0.5f, 9f);
        GradClip.ClipByValue([a], 1.0);
        Assert.Equal(new float[] { -1, 0.5f, 1 }, a.Grad!.ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => GradClip.ClipByValue([a], 0));
    }
}
