using MLNet.FastTrain.Learning;

namespace MLNet.FastTrain.Callbacks;

/// <summary>
/// Hooks into <see cref="Learner.Fit"/>. Events come in this order:
/// BeforeFit, then per epoch BeforeEpoch, per batch (BeforeBatch, AfterLoss, AfterBackward, AfterStep, AfterBatch),
/// BeforeValidate, AfterValidate, AfterEpoch; finally AfterFit (always, even when cancelled).
/// Callbacks run in ascending <see cref="Order"/>, then in the order they were added.
/// </summary>
/// <remarks>
/// A callback cancels by throwing <see cref="CancelBatchException"/> (skips the rest of the batch, no step),
/// <see cref="CancelEpochException"/> (ends the epoch's training, still validates) or
/// <see cref="CancelFitException"/> (ends training).
/// </remarks>
public abstract class Callback
{
    /// <summary>Lower runs first. Schedulers use -10, the recorder 0, the rest 10 unless they say otherwise.</summary>
    public virtual int Order => 10;

    /// <summary>Before the first epoch.</summary>
    public virtual void BeforeFit(Learner learner) { }

    /// <summary>Before an epoch's training batches.</summary>
    public virtual void BeforeEpoch(Learner learner) { }

    /// <summary>Before a training batch's forward pass.</summary>
    public virtual void BeforeBatch(Learner learner) { }

    /// <summary>After the loss is computed, before backward.</summary>
    public virtual void AfterLoss(Learner learner) { }

    /// <summary>After backward, before the optimizer step (gradient clipping goes here).</summary>
    public virtual void AfterBackward(Learner learner) { }

    /// <summary>After the optimizer step.</summary>
    public virtual void AfterStep(Learner learner) { }

    /// <summary>After a training batch, stepped or cancelled.</summary>
    public virtual void AfterBatch(Learner learner) { }

    /// <summary>Before validation.</summary>
    public virtual void BeforeValidate(Learner learner) { }

    /// <summary>After validation; <see cref="Learner.LastValidation"/> holds the results.</summary>
    public virtual void AfterValidate(Learner learner) { }

    /// <summary>After an epoch, validation included.</summary>
    public virtual void AfterEpoch(Learner learner) { }

    /// <summary>After training ends, normally or not.</summary>
    public virtual void AfterFit(Learner learner) { }
}

/// <summary>Skips the rest of the current batch (no optimizer step).</summary>
public sealed class CancelBatchException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CancelBatchException() : base("Batch cancelled.") { }

    /// <summary>Creates the exception.</summary>
    public CancelBatchException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public CancelBatchException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>Ends the current epoch's training; validation still runs.</summary>
public sealed class CancelEpochException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CancelEpochException() : base("Epoch cancelled.") { }

    /// <summary>Creates the exception.</summary>
    public CancelEpochException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public CancelEpochException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>Ends training; AfterFit callbacks still run.</summary>
public sealed class CancelFitException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CancelFitException() : base("Training cancelled.") { }

    /// <summary>Creates the exception with the reason.</summary>
    public CancelFitException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public CancelFitException(string message, Exception inner) : base(message, inner) { }
}
