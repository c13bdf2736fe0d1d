"""``model.fit`` for MultiWorkerMirroredStrategy: the same epoch loop around a distributed step.

Why not ``model.fit``: with Keras 3.15 / TensorFlow 2.21, ``fit`` under
``tf.distribute.MultiWorkerMirroredStrategy`` fails in ``_maybe_symbolic_build`` (it calls
``strategy.reduce`` on a per-replica batch) and then inside the train function ("Invalid
reduction dimension 0 for input with 0 dimensions"): keras-team/keras#20585 (open),
tensorflow/tensorflow#72388, ray-project/ray#47464. This module is the workaround and should go
when that issue is fixed: ``Trainer`` then calls ``fit`` whatever the strategy.

What it keeps from ``fit``: the callbacks (``CallbackList`` with the same ``params``, hooks and
epoch ``logs`` keys: loss, accuracy, val_loss, val_accuracy), ``initial_epoch``/``epochs``,
``model.stop_training`` (early stopping) and ``model.history``. The train dataset is iterated
through one iterator per call over ``dataset.repeat()``, ``steps_per_epoch`` batches per epoch,
so a pipeline whose order is a function of the epoch plugs in unchanged. Not carried over:
``jit_compile`` (the step is a plain ``tf.function``) and ``steps_per_execution``.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _distribute(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    # Every worker runs the whole (seeded, identical) pipeline and keeps its share of each
    # global batch: DATA sharding needs no file-based input and keeps data.batch_size global.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def fit_multiworker(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    train: tf.data.Dataset,
    val: tf.data.Dataset | None,
    *,
    steps_per_epoch: int,
    initial_epoch: int,
    epochs: int,
    callbacks: list[keras.callbacks.Callback],
    verbose: int = 0,
) -> keras.callbacks.History:
    """Train a compiled ``model`` like ``model.fit`` does, with a distributed train step."""
    loss_fn = model.loss  # the compiled loss object; .call gives per-example values
    with strategy.scope():
        train_metrics = [keras.metrics.Mean(name="loss"), _accuracy()]
        val_metrics = [keras.metrics.Mean(name="loss"), _accuracy()]
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)

    def train_replica(x, y):
        # The loss is averaged over the global batch, so summing the replicas' gradients
        # (optimizer.apply does that) gives the single-process gradient. Counting the examples
        # across replicas keeps the last, smaller batch of an epoch exact too.
        ctx = tf.distribute.get_replica_context()
        n = ctx.all_reduce("sum", tf.cast(tf.shape(y)[0], tf.float32))
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            per_example = loss_fn.call(y, pred)
            loss = tf.reduce_sum(per_example) / n  # tf.nn.compute_average_loss, exact count
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply(grads, model.trainable_variables)
        train_metrics[0].update_state(per_example)
        train_metrics[1].update_state(y, pred)

    def val_replica(x, y):
        pred = model(x, training=False)
        val_metrics[0].update_state(loss_fn.call(y, pred))
        val_metrics[1].update_state(y, pred)

    @tf.function
    def train_step(iterator):
        strategy.run(train_replica, args=next(iterator))
        # Reading a metric sums its variables over all workers: every worker must do it.
        return {m.name: m.result() for m in train_metrics}

    @tf.function
    def val_step(batch):
        strategy.run(val_replica, args=batch)

    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=verbose != 0,
        verbose=verbose,
        epochs=epochs,
        steps=steps_per_epoch,
        model=model,
    )
    model.stop_training = False
    iterator = iter(_distribute(strategy, train.repeat()))
    val_dist = _distribute(strategy, val) if val is not None else None
    callback_list.on_train_begin()
    training_logs = None
    for epoch in range(initial_epoch, epochs):
        for metric in train_metrics + val_metrics:
            metric.reset_state()
        callback_list.on_epoch_begin(epoch)
        for step in range(steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            logs = train_step(iterator)
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        epoch_logs = {m.name: float(m.result()) for m in train_metrics}
        if val_dist is not None:
            for batch in val_dist:
                val_step(batch)
            epoch_logs.update({f"val_{m.name}": float(m.result()) for m in val_metrics})
        callback_list.on_epoch_end(epoch, epoch_logs)
        training_logs = epoch_logs
        if model.stop_training:
            break
    if epochs > 0:
        model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs=training_logs)
    return model.history


def _accuracy() -> keras.metrics.Metric:
    # The Trainer compiles metrics=["accuracy"] on one-hot labels: categorical accuracy.
    return keras.metrics.CategoricalAccuracy(name="accuracy")


def fit_phase(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    train: tf.data.Dataset,
    val: tf.data.Dataset,
    multiworker: bool = False,
    class_weight: dict | None = None,
    **fit_args,
) -> keras.callbacks.History:
    """Keras ``fit`` on one process; :func:`fit_multiworker` under several workers."""
    if multiworker:  # Keras's fit fails under this strategy (see the module)
        return fit_multiworker(model, strategy, train, val, **fit_args)
    return model.fit(
        train, validation_data=val, class_weight=class_weight, shuffle=False, **fit_args
    )
