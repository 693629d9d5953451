namespace MLNet.FastTrain.Engine.Autograd;

/// <summary>
/// Records operations into the autograd graph, and holds the two per-thread switches that affect recording:
/// no-grad scopes and anomaly detection.
/// </summary>
public static class GradRecorder
{
    [ThreadStatic] private static int t_noGradDepth;
    [ThreadStatic] private static int t_anomalyDepth;

    /// <summary>False inside a <see cref="NoGrad"/> scope: operations then build no graph.</summary>
    public static bool IsEnabled => t_noGradDepth == 0;

    /// <summary>True inside a <see cref="DetectAnomaly"/> scope.</summary>
    public static bool IsAnomalyDetectionEnabled => t_anomalyDepth > 0;

    /// <summary>Opens a scope in which operations record no graph (inference, optimizer updates).</summary>
    public static Scope NoGrad() => new(ref t_noGradDepth, isNoGrad: true);

    /// <summary>
    /// Opens a scope in which every operation's output and every gradient is checked, and the first NaN or
    /// infinity throws <see cref="NonFiniteValueException"/> naming the operation. It costs a pass over every
    /// tensor, so it is off by default.
    /// </summary>
    public static Scope DetectAnomaly() => new(ref t_anomalyDepth, isNoGrad: false);

    /// <summary>
    /// Attaches <paramref name="backward"/> to <paramref name="result"/> when any input requires grad and
    /// recording is on; checks the result when anomaly detection is on.
    /// </summary>
    public static Tensor Record(Tensor result, string operation, Tensor[] inputs, BackwardFunction backward)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(inputs);
        if (IsAnomalyDetectionEnabled) CheckFinite(result, operation, inBackward: false);
        if (!IsEnabled) return result;
        foreach (var input in inputs)
        {
            if (input.RequiresGrad)
            {
                result.GradFn = new FunctionNode(operation, inputs, backward);
                break;
            }
        }
        return result;
    }

    /// <summary>
    /// Attaches a built-in operation's backward rule to <paramref name="result"/> when any input requires grad and
    /// recording is on; the node comes from a pool, and with a static rule and a value-tuple state nothing is
    /// allocated. Input slots may be null (an absent bias); the rule writes a gradient per slot.
    /// </summary>
    internal static Tensor Record<TState>(Tensor result, string operation, ReadOnlySpan<Tensor?> inputs, TState state, BackwardRule<TState> backward)
    {
        if (IsAnomalyDetectionEnabled) CheckFinite(result, operation, inBackward: false);
        if (!IsEnabled) return result;
        foreach (var input in inputs)
        {
            if (input is not null && input.RequiresGrad)
            {
                result.GradFn = RuleNode<TState>.Rent(operation, state, backward, inputs);
                break;
            }
        }
        return result;
    }

    internal static void CheckFinite(Tensor t, string operation, bool inBackward)
    {
        if (t.DType == DType.Float32)
        {
            var s = t.AsSpan();
            for (int i = 0; i < s.Length; i++)
                if (!float.IsFinite(s[i])) throw new NonFiniteValueException(operation, inBackward, t.Shape, i, s[i]);
        }
        else
        {
            var s = t.AsDoubleSpan();
            for (int i = 0; i < s.Length; i++)
                if (!double.IsFinite(s[i])) throw new NonFiniteValueException(operation, inBackward, t.Shape, i, s[i]);
        }
    }

    /// <summary>A scope opened by <see cref="NoGrad"/> or <see cref="DetectAnomaly"/>; dispose it to close.</summary>
    public readonly struct Scope : IDisposable, IEquatable<Scope>
    {
        private readonly bool _isNoGrad;

        internal Scope(ref int depth, bool isNoGrad)
        {
            depth++;
            _isNoGrad = isNoGrad;
        }

        /// <inheritdoc />
        public void Dispose()
        {
            if (_isNoGrad) t_noGradDepth--; else t_anomalyDepth--;
        }

        /// <inheritdoc />
        public bool Equals(Scope other) => _isNoGrad == other._isNoGrad;

        /// <inheritdoc />
        public override bool Equals(object? obj) => obj is Scope s && Equals(s);

        /// <inheritdoc />
        public override int GetHashCode() => _isNoGrad.GetHashCode();

        /// <summary>Scopes compare by kind.</summary>
        public static bool operator ==(Scope left, Scope right) => left.Equals(right);

        /// <summary>Scopes compare by kind.</summary>
        public static bool operator !=(Scope left, Scope right) => !left.Equals(right);
    }
}
