//===- DiscoverLayers.cpp - Group a flat model function into layers -------===//
//
// Layers are found in two steps. First the transformer blocks: from scope
// names in op locations, or, when names are missing or contradict the data
// flow, from structure. Then every other op gets a place on the line
//   gap 0, block 0, gap 1, block 1, ..., block B-1, gap B
// (position 2i for gap i, 2b+1 for block b) no earlier than its operands and
// no later than its users; the ops of a gap become the embedding, head or
// "other" layers. Parameter reads, constants and what is computed from them
// alone are not placed: each layer that uses them gets its own copy.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Dialect/Galvatron/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/Hashing.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringExtras.h"

#include <functional>
#include <map>

namespace mlir::galvatron {
#define GEN_PASS_DEF_DISCOVERLAYERS
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h.inc"
} // namespace mlir::galvatron

using namespace mlir;
using namespace mlir::galvatron;

namespace {

//===----------------------------------------------------------------------===//
// Scope names
//===----------------------------------------------------------------------===//

/// The names an op's location carries (NameLocs, also inside fused
/// locations of raised ops).
SmallVector<StringRef> locationNames(Location loc) {
  SmallVector<StringRef> names;
  loc->walk([&](Location inner) {
    if (auto name = dyn_cast<NameLoc>(inner))
      names.push_back(name.getName().getValue());
    return WalkResult::advance();
  });
  return names;
}

/// The module path of an exporter node name: "/transformer/h.3/attn/MatMul"
/// → [transformer, h.3, attn]. The last component names the node itself.
SmallVector<StringRef> scopeOf(StringRef name) {
  SmallVector<StringRef> parts;
  name.split(parts, '/', -1, /*KeepEmpty=*/false);
  if (!parts.empty())
    parts.pop_back();
  return parts;
}

/// A transformer block named by a scope: the first component "name.N".
struct BlockKey {
  std::string name;  // e.g. "transformer.h.3"
  std::string stack; // e.g. "transformer.h"
};

std::optional<BlockKey> blockOfScope(ArrayRef<StringRef> scope) {
  for (auto [position, component] : llvm::enumerate(scope)) {
    auto [base, number] = component.rsplit('.');
    unsigned index;
    if (base.empty() || number.empty() || number.getAsInteger(10, index))
      continue;
    SmallVector<StringRef> path(scope.take_front(position));
    path.push_back(base);
    std::string stack = llvm::join(path, ".");
    return BlockKey{stack + "." + number.str(), stack};
  }
  return std::nullopt;
}

/// The longest common module path of `scopes`, joined with dots.
std::string commonScope(ArrayRef<SmallVector<StringRef>> scopes) {
  if (scopes.empty())
    return "";
  ArrayRef<StringRef> common = scopes.front();
  for (ArrayRef<StringRef> scope : scopes.drop_front()) {
    size_t length = 0;
    while (length < common.size() && length < scope.size() &&
           common[length] == scope[length])
      ++length;
    common = common.take_front(length);
  }
  return llvm::join(common, ".");
}

//===----------------------------------------------------------------------===//
// The discovery
//===----------------------------------------------------------------------===//

struct Layer {
  LayerKind kind;
  std::string name;
  SmallVector<Operation *> ops;
};

class LayerDiscovery {
public:
  LayerDiscovery(func::FuncOp function, bool useNames)
      : function(function), useNames(useNames) {}
  void run();

private:
  void classify();
  bool assignBlocksFromNames();
  void assignBlocksFromStructure();
  bool placeOps();
  SmallVector<Layer> formLayers();
  void buildLayers(ArrayRef<Layer> layers);
  std::string gapName(ArrayRef<Operation *> ops, LayerKind kind);
  LayerKind blockKind(ArrayRef<Operation *> ops);

  int64_t numBlocks() const { return blockNames.size(); }
  int operandProducer(Value value) const {
    Operation *def = value.getDefiningOp();
    auto it = def ? index.find(def) : index.end();
    return it == index.end() ? -1 : static_cast<int>(it->second);
  }

  func::FuncOp function;
  bool useNames;
  /// Ops that depend on function arguments, in program order.
  SmallVector<Operation *> ops;
  DenseMap<Operation *, unsigned> index;
  /// Ops computed from parameters and constants only.
  DenseSet<Operation *> rematerializable;
  /// Per runtime op: its block (-1 when outside blocks), whether it may join
  /// a block it is not named in, and its place on the line.
  SmallVector<int> blockOf;
  SmallVector<bool> absorbable;
  SmallVector<int64_t> position;
  SmallVector<std::string> blockNames;
};

void LayerDiscovery::classify() {
  Block &body = function.getBody().front();
  for (Operation &op : body.without_terminator()) {
    bool fromWeights = op.getNumRegions() == 0 && isPure(&op) &&
                       llvm::all_of(op.getOperands(), [&](Value operand) {
                         Operation *def = operand.getDefiningOp();
                         return def && rematerializable.contains(def);
                       });
    if (fromWeights) {
      rematerializable.insert(&op);
      continue;
    }
    index[&op] = ops.size();
    ops.push_back(&op);
  }
}

bool LayerDiscovery::assignBlocksFromNames() {
  llvm::StringMap<int> blockIds;
  bool any = false;
  for (auto [i, op] : llvm::enumerate(ops)) {
    SmallVector<StringRef> names = locationNames(op->getLoc());
    absorbable[i] = names.empty();
    for (StringRef name : names) {
      std::optional<BlockKey> key = blockOfScope(scopeOf(name));
      if (!key)
        continue;
      auto [it, inserted] = blockIds.try_emplace(key->name, blockNames.size());
      if (inserted)
        blockNames.push_back(key->name);
      blockOf[i] = it->second;
      any = true;
      break;
    }
  }
  return any;
}

/// Structural discovery: the post-dominator chain from each function
/// argument is the residual stream; its segments' signatures repeat with the
/// blocks' period.
void LayerDiscovery::assignBlocksFromStructure() {
  int count = ops.size(), sink = count;
  // Immediate post-dominators over the runtime ops (users come later in the
  // block, so one backward sweep is exact).
  SmallVector<int> idom(count + 1, sink), depth(count + 1, 0);
  auto intersect = [&](int a, int b) {
    while (a != b) {
      if (depth[a] > depth[b])
        a = idom[a];
      else
        b = idom[b];
    }
    return a;
  };
  auto usersOf = [&](Operation *op, auto &&visit) {
    for (Operation *user : op->getUsers()) {
      auto it = index.find(user);
      visit(it == index.end() ? sink : static_cast<int>(it->second));
    }
  };
  for (int i = count - 1; i >= 0; --i) {
    int dominator = -1;
    usersOf(ops[i], [&](int user) {
      dominator = dominator < 0 ? user : intersect(dominator, user);
    });
    idom[i] = dominator < 0 ? sink : dominator;
    depth[i] = depth[idom[i]] + 1;
  }

  SmallVector<SmallVector<int>> foundBlocks;
  // The chain before a run of blocks is an embedding: it must not join the
  // first block. Everything else may join the one block that uses it (side
  // computations such as cross-attention keys of the encoder output).
  SmallVector<bool> embedding(count, false);
  for (BlockArgument argument : function.getArguments()) {
    int start = -1;
    for (Operation *user : argument.getUsers()) {
      auto it = index.find(user);
      int node = it == index.end() ? sink : static_cast<int>(it->second);
      start = start < 0 ? node : intersect(start, node);
    }
    if (start < 0 || start == sink)
      continue;
    SmallVector<int> chain;
    SmallVector<int> chainIndex(count, -1);
    for (int node = start; node != sink; node = idom[node]) {
      chainIndex[node] = chain.size();
      chain.push_back(node);
    }
    // anc: the latest chain point an op depends on; nearest: the first chain
    // point every path from the op passes.
    SmallVector<int> anc(count, -1), nearest(count, -1);
    for (int i = 0; i < count; ++i)
      for (Value operand : ops[i]->getOperands()) {
        int producer = operandProducer(operand);
        if (producer >= 0)
          anc[i] =
              std::max(anc[i], chainIndex[producer] >= 0 ? chainIndex[producer]
                                                         : anc[producer]);
      }
    for (int i = count - 1; i >= 0; --i)
      nearest[i] = chainIndex[i] >= 0 ? chainIndex[i]
                   : idom[i] == sink  ? -1
                                      : nearest[idom[i]];
    SmallVector<SmallVector<int>> segments(chain.size());
    for (int i = 0; i < count; ++i) {
      int k = nearest[i];
      if (k >= 0 && (chainIndex[i] == k || anc[i] == k - 1))
        segments[k].push_back(i);
    }
    // Segment signatures: op names, types, attributes and where each operand
    // comes from (this segment, the previous chain point, weights, outside).
    SmallVector<llvm::hash_code> signatures;
    for (auto [k, members] : llvm::enumerate(segments)) {
      DenseMap<int, int> local;
      llvm::hash_code hash = llvm::hash_value(members.size());
      for (int member : members) {
        Operation *op = ops[member];
        hash = llvm::hash_combine(hash, op->getName().getAsOpaquePointer(),
                                  op->getAttrDictionary().getAsOpaquePointer());
        for (Type type : op->getResultTypes())
          hash = llvm::hash_combine(hash, type.getAsOpaquePointer());
        for (Value operand : op->getOperands()) {
          int producer = operandProducer(operand);
          Operation *def = operand.getDefiningOp();
          int origin = producer < 0                        ? (def ? 3 : 4)
                       : local.count(producer)             ? 1
                       : k > 0 && producer == chain[k - 1] ? 2
                                                           : 4;
          hash = llvm::hash_combine(hash, origin,
                                    origin == 1 ? local[producer] : 0,
                                    operand.getType().getAsOpaquePointer());
        }
        local[member] = local.size();
      }
      signatures.push_back(hash);
    }
    // The longest periodic run of segments; ties: shorter period, then the
    // run that starts last.
    int size = signatures.size();
    int bestCover = 0, bestPeriod = 0, bestStart = 0;
    for (int period = 1; period <= size / 2; ++period) {
      for (int i = 0; i + period < size;) {
        if (signatures[i] != signatures[i + period]) {
          ++i;
          continue;
        }
        int j = i;
        while (j + period < size && signatures[j] == signatures[j + period])
          ++j;
        int length = j + period - i, repeats = length / period;
        int cover = repeats * period, start = j + period - cover;
        if (repeats >= 2 &&
            (cover > bestCover || (cover == bestCover && period < bestPeriod) ||
             (cover == bestCover && period == bestPeriod &&
              start > bestStart))) {
          bestCover = cover;
          bestPeriod = period;
          bestStart = start;
        }
        i = j + 1;
      }
    }
    if (!bestCover)
      continue;
    for (int k = 0; k < bestStart; ++k)
      for (int member : segments[k])
        embedding[member] = true;
    for (int first = bestStart; first < bestStart + bestCover;
         first += bestPeriod) {
      SmallVector<int> members;
      for (int k = first; k < first + bestPeriod; ++k)
        for (int member : segments[k])
          if (blockOf[member] < 0) {
            members.push_back(member);
            blockOf[member] = 0; // claimed; numbered below
          }
      if (!members.empty())
        foundBlocks.push_back(std::move(members));
    }
  }
  // Blocks in program order of their first op.
  llvm::sort(foundBlocks,
             [](const SmallVector<int> &a, const SmallVector<int> &b) {
               return *llvm::min_element(a) < *llvm::min_element(b);
             });
  for (auto [id, members] : llvm::enumerate(foundBlocks)) {
    for (int member : members)
      blockOf[member] = id;
    blockNames.push_back("block." + std::to_string(id));
  }
  for (int i = 0; i < count; ++i)
    absorbable[i] = !embedding[i];
}

/// Places every runtime op on the line; false when the block assignment
/// contradicts the data flow.
bool LayerDiscovery::placeOps() {
  int count = ops.size();
  int64_t end = 2 * numBlocks();
  // Blocks are fixed; every other op goes as late as its users allow: into
  // the one block using it when it may join blocks (nameless side
  // computations), else into the gap before its first user, and never
  // before its operands (which can put it into its producer's block).
  SmallVector<int64_t> lower(count, 0);
  for (int i = 0; i < count; ++i) {
    if (blockOf[i] >= 0)
      position[i] = 2 * blockOf[i] + 1;
    for (Value operand : ops[i]->getOperands()) {
      int producer = operandProducer(operand);
      if (producer >= 0)
        lower[i] =
            std::max(lower[i], blockOf[producer] >= 0 ? position[producer]
                                                      : lower[producer]);
    }
  }
  for (int i = count - 1; i >= 0; --i) {
    if (blockOf[i] >= 0)
      continue;
    int64_t latest = end;
    std::optional<int64_t> onlyBlock;
    bool single = true;
    for (Operation *user : ops[i]->getUsers()) {
      auto it = index.find(user);
      int64_t at = it == index.end() ? end : position[it->second];
      latest = std::min(latest, at);
      if (at % 2 == 1 && (!onlyBlock || *onlyBlock == at))
        onlyBlock = at;
      else
        single = false;
    }
    if (lower[i] > latest)
      return false;
    if (absorbable[i] && single && onlyBlock)
      position[i] = *onlyBlock;
    else
      position[i] = std::max(lower[i], latest % 2 ? latest - 1 : latest);
  }
  for (int i = 0; i < count; ++i)
    for (Value operand : ops[i]->getOperands()) {
      int producer = operandProducer(operand);
      if (producer >= 0 && position[producer] > position[i])
        return false;
    }
  return true;
}

LayerKind LayerDiscovery::blockKind(ArrayRef<Operation *> blockOps) {
  int attentions = 0;
  bool causal = false;
  for (Operation *op : blockOps) {
    if (auto attention = dyn_cast<AttentionOp>(op)) {
      ++attentions;
      causal |= attention.getCausal();
    }
    for (Value operand : op->getOperands())
      causal |= isa_and_nonnull<TrilMaskOp>(operand.getDefiningOp());
  }
  return causal || attentions > 1 ? LayerKind::decoder : LayerKind::encoder;
}

std::string LayerDiscovery::gapName(ArrayRef<Operation *> gapOps,
                                    LayerKind kind) {
  SmallVector<SmallVector<StringRef>> scopes;
  for (Operation *op : gapOps)
    for (StringRef name : locationNames(op->getLoc()))
      scopes.push_back(scopeOf(name));
  std::string common = commonScope(scopes);
  switch (kind) {
  case LayerKind::embedding:
    if (common.empty())
      return "embeddings";
    return StringRef(common).contains("embed") ? common
                                               : common + ".embeddings";
  case LayerKind::head: {
    if (!common.empty())
      return common;
    // The module producing the first result names the head (lm_head).
    auto ret = cast<func::ReturnOp>(function.getBody().front().getTerminator());
    for (Value result : ret.getOperands())
      if (Operation *def = result.getDefiningOp())
        for (StringRef name : locationNames(def->getLoc())) {
          SmallVector<StringRef> scope = scopeOf(name);
          if (!scope.empty())
            return scope.front().str();
        }
    return "head";
  }
  default:
    return common.empty() ? "other" : common;
  }
}

SmallVector<Layer> LayerDiscovery::formLayers() {
  SmallVector<Layer> layers;
  int64_t blocks = numBlocks(), end = 2 * blocks;
  std::map<int64_t, SmallVector<Operation *>> groups;
  for (auto [i, op] : llvm::enumerate(ops))
    groups[position[i]].push_back(op);
  // Whether an op depends on a block's output.
  DenseSet<Operation *> afterBlock;
  for (auto [i, op] : llvm::enumerate(ops)) {
    bool depends = position[i] % 2 == 1;
    for (Value operand : op->getOperands()) {
      int producer = operandProducer(operand);
      depends |= producer >= 0 && afterBlock.contains(ops[producer]);
    }
    if (depends)
      afterBlock.insert(op);
  }
  for (auto &[at, groupOps] : groups) {
    if (at % 2 == 1) {
      layers.push_back({blockKind(groupOps), blockNames[at / 2], groupOps});
      continue;
    }
    if (blocks == 0) {
      auto module = function->getParentOfType<ModuleOp>();
      auto model = module ? module->getAttrOfType<StringAttr>(
                                GalvatronDialect::getModelAttrName())
                          : StringAttr();
      layers.push_back(
          {LayerKind::other, model ? model.str() : "model", groupOps});
      continue;
    }
    if (at == 0 || at == end) {
      LayerKind kind = at == 0 ? LayerKind::embedding : LayerKind::head;
      layers.push_back({kind, gapName(groupOps, kind), groupOps});
      continue;
    }
    // Between blocks: what continues the previous stack ("other") and what
    // starts the next one ("embedding").
    Layer continuation{LayerKind::other, "", {}};
    Layer embedding{LayerKind::embedding, "", {}};
    for (Operation *op : groupOps)
      (afterBlock.contains(op) ? continuation : embedding).ops.push_back(op);
    continuation.name = gapName(continuation.ops, LayerKind::other);
    embedding.name = gapName(embedding.ops, LayerKind::embedding);
    DenseSet<Operation *> embeddingOps(embedding.ops.begin(),
                                       embedding.ops.end());
    bool usesEmbedding = llvm::any_of(continuation.ops, [&](Operation *op) {
      return llvm::any_of(op->getOperands(), [&](Value operand) {
        return embeddingOps.contains(operand.getDefiningOp());
      });
    });
    if (usesEmbedding)
      std::swap(continuation, embedding);
    for (Layer *layer : {&continuation, &embedding})
      if (!layer->ops.empty())
        layers.push_back(std::move(*layer));
  }
  return layers;
}

void LayerDiscovery::buildLayers(ArrayRef<Layer> layers) {
  Block &body = function.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  OpBuilder builder(ret);
  DenseMap<Value, Value> exported;
  // The last layer also produces results that are computed from weights
  // alone; a function without runtime ops needs a layer for them.
  SmallVector<Layer> all(layers.begin(), layers.end());
  bool weightResults = llvm::any_of(ret.getOperands(), [&](Value value) {
    Operation *def = value.getDefiningOp();
    return def && rematerializable.contains(def);
  });
  if (all.empty() && weightResults)
    all.push_back({LayerKind::other, "model", {}});

  for (auto [layerIndex, layer] : llvm::enumerate(all)) {
    DenseSet<Operation *> members(layer.ops.begin(), layer.ops.end());
    bool last = layerIndex + 1 == all.size();
    llvm::SetVector<Value> inputs;
    SmallVector<Value> outputs;
    for (Operation *op : layer.ops) {
      for (Value operand : op->getOperands()) {
        Operation *def = operand.getDefiningOp();
        if (def && (members.contains(def) || rematerializable.contains(def)))
          continue;
        inputs.insert(operand);
      }
      for (Value result : op->getResults())
        if (llvm::any_of(result.getUsers(), [&](Operation *user) {
              return !members.contains(user);
            }))
          outputs.push_back(result);
    }
    SmallVector<Value> weightOutputs;
    if (last)
      for (Value value : ret.getOperands()) {
        Operation *def = value.getDefiningOp();
        if (def && rematerializable.contains(def))
          weightOutputs.push_back(value);
      }

    SmallVector<Value> operands;
    for (Value input : inputs)
      operands.push_back(exported.lookup(input) ? exported.lookup(input)
                                                : input);
    SmallVector<Type> resultTypes;
    for (Value value : llvm::concat<Value>(outputs, weightOutputs))
      resultTypes.push_back(value.getType());
    Location loc =
        layer.ops.empty() ? function.getLoc() : layer.ops.front()->getLoc();
    auto layerOp = LayerOp::create(builder, loc, resultTypes, layer.name,
                                   layer.kind, operands);
    Block &layerBody = layerOp.getBodyBlock();
    IRMapping mapping;
    for (auto [input, argument] : llvm::zip(inputs, layerBody.getArguments()))
      mapping.map(input, argument);
    for (Operation *op : layer.ops)
      op->moveBefore(&layerBody, layerBody.end());

    // Copies of weight computations at the start of the layer.
    OpBuilder cloneBuilder = OpBuilder::atBlockBegin(&layerBody);
    std::function<Value(Value)> localize = [&](Value value) -> Value {
      if (Value mapped = mapping.lookupOrNull(value))
        return mapped;
      Operation *def = value.getDefiningOp();
      if (!def || !rematerializable.contains(def))
        return value;
      for (Value operand : def->getOperands())
        localize(operand);
      Operation *clone = cloneBuilder.clone(*def, mapping);
      return clone->getResult(cast<OpResult>(value).getResultNumber());
    };
    for (Operation *op : layer.ops)
      for (OpOperand &operand : op->getOpOperands())
        operand.set(localize(operand.get()));
    SmallVector<Value> yielded(outputs);
    for (Value value : weightOutputs)
      yielded.push_back(localize(value));
    OpBuilder yieldBuilder = OpBuilder::atBlockEnd(&layerBody);
    YieldOp::create(yieldBuilder, loc, yielded);
    for (auto [value, result] : llvm::zip(outputs, layerOp.getResults()))
      exported[value] = result;
    for (auto [value, result] : llvm::zip(
             weightOutputs, layerOp.getResults().drop_front(outputs.size())))
      exported[value] = result;
  }
  for (OpOperand &operand : ret->getOpOperands())
    if (Value result = exported.lookup(operand.get()))
      operand.set(result);
  // The original weight computations are now unused.
  for (Operation &op : llvm::make_early_inc_range(llvm::reverse(body)))
    if (rematerializable.contains(&op) && op.use_empty())
      op.erase();
}

void LayerDiscovery::run() {
  classify();
  int count = ops.size();
  auto reset = [&]() {
    blockOf.assign(count, -1);
    absorbable.assign(count, false);
    position.assign(count, 0);
    blockNames.clear();
  };
  reset();
  bool placed = useNames && assignBlocksFromNames() && placeOps();
  if (!placed) {
    reset();
    assignBlocksFromStructure();
    placed = placeOps();
  }
  if (!placed) {
    // No consistent blocks: the whole model is one layer.
    reset();
    placeOps();
  }
  buildLayers(formLayers());
}

} // namespace

namespace mlir::galvatron {
namespace {
struct DiscoverLayersPass : impl::DiscoverLayersBase<DiscoverLayersPass> {
  using DiscoverLayersBase::DiscoverLayersBase;

  void runOnOperation() override {
    func::FuncOp function = getOperation();
    if (function.isExternal() || !function.getBody().hasOneBlock() ||
        !function.getOps<LayerOp>().empty())
      return;
    LayerDiscovery(function, useNames).run();
  }
};
} // namespace
} // namespace mlir::galvatron
